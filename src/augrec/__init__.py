"""augrec: recommendation with honest, measured GAN-based data augmentation.

Importing the package is free: heavy dependencies (torch, Feast, Ray, BentoML) load inside
the functions that need them.
"""

__version__ = "0.1.0"
