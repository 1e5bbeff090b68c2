"""Dilation (atrous convolution): a kernel with holes, and stacked receptive fields (seeds 000, 001).

Run: python examples/dilation.py
"""
from convlab.examples import dilation

dilation.run()
