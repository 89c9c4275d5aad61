"""The version of the tollgate gateway distribution."""

__version__ = "0.1.0"
