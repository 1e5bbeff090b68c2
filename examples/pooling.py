"""Max and average pooling; pooling and the receptive field (seeds 004, 000). Run: python examples/pooling.py"""
from convlab.examples import pooling

pooling.run()
