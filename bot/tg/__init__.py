"""The only package that imports `telegram`: application, handlers, keyboards, sender."""
