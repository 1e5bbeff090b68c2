"""Edge detection with the kernel [[1, -1]] (seed 003). Run: python examples/edge_detection.py"""
from convlab.examples import edge_detection

edge_detection.run()
