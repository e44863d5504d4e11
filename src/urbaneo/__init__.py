"""urbaneo: city-scale NPP, LCZ, urban-land and vegetation-plan products from EO data."""

__version__ = "0.1.0"
