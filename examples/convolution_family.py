"""The convolution family: depthwise-separable, spatially separable and grouped (seed 001).

Run: python examples/convolution_family.py
"""
from convlab.examples import convolution_family

convolution_family.run()
