"""Metadata lives in setup.cfg; this adds the compiled book core.

``_gfws_book`` (from ``gfws/venues/kraken/_book.c``) is built by ``pip install``
wherever a C compiler and the Python headers are; where the build fails, the
install goes on and gfws uses its pure-Python book: identical results, slower.
It is a top-level module so that tests run from a checkout (whose ``gfws/``
comes first on the path) still find the one pip built.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "_gfws_book",
            ["gfws/venues/kraken/_book.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
