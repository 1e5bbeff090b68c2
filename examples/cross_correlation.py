"""Two-dimensional cross-correlation, figure 5.1 (seed 003). Run: python examples/cross_correlation.py"""
from convlab.examples import cross_correlation

cross_correlation.run()
