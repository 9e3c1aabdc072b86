"""Metadata lives in setup.cfg; this adds the compiled book core.

``gfws.venues.kraken._book`` is built by ``pip install`` wherever a C compiler
and the Python headers are; where the build fails, the install goes on and
gfws uses its pure-Python book, which gives identical results, slower.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gfws.venues.kraken._book",
            ["gfws/venues/kraken/_book.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
