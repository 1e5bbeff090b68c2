"""Cross-correlation vs. convolution; the receptive field of a stacked element (seed 003).

Run: python examples/correlation_vs_convolution.py
"""
from convlab.examples import correlation_vs_convolution

correlation_vs_convolution.run()
