"""jdl: declarative Justice-Data-Lab-style reoffending impact evaluations."""

__version__ = "0.1.0"
