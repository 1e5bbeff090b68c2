"""Input channels, output channels and the 1x1 convolution (seed 004). Run: python examples/channels.py"""
from convlab.examples import channels

channels.run()
