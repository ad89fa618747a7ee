"""Which packages the wheel holds; everything else about the build is in pyproject.toml.

Package discovery finds every package of the checkout (a directory with an __init__.py), so a new one
ships without a list to update. This file exists because pyproject.toml's discovery cannot ship a
directory under another name: conf/ sits at the top of the checkout and ships as trainer/conf
(pyproject.toml maps the directory), so `python -m trainer` finds it from a checkout and from a wheel.
"""

from setuptools import find_packages, setup

NOT_SHIPPED = ("tests", "benchmarks", "docs", "outputs", "build", "dist")

setup(packages=[*find_packages(exclude=[p for top in NOT_SHIPPED for p in (top, f"{top}.*")]), "trainer.conf"])
