"""The synthetic demo city, generated in the real file formats (see `city.synth_city`)."""

from .city import synth_city

__all__ = ["synth_city"]
