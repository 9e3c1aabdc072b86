"""Metadata lives in setup.cfg; this adds the compiled book core and bus.

``_gfws_book`` (from ``gfws/venues/kraken/_book.c``) and ``_gfws_bus`` (from
``gfws/publish/_bus.c``) are built by ``pip install`` wherever a C compiler and
the Python headers are; where a build fails, the install goes on and gfws uses
its pure-Python twin: identical results, slower.  They are top-level modules so
that tests run from a checkout (whose ``gfws/`` comes first on the path) still
find the ones pip built.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "_gfws_book",
            ["gfws/venues/kraken/_book.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension("_gfws_bus", ["gfws/publish/_bus.c"], extra_compile_args=["-O2"], optional=True),
    ]
)
