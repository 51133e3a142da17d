"""What every layer shares: content-keyed caches written atomically (`cache`), and whether someone is watching, for
progress bars and live widgets (`frontend`)."""
