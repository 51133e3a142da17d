"""Steps: what each notebook computes, called the same way from a notebook, a batch script or a test."""
