"""Views: figures, interactive widgets, the report, and whether someone is watching (progress bars)."""
