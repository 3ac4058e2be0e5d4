"""Reason-RFT for verl: task rewards, data, recipes and a pipeline.

Importing this package has no side effects (it is imported inside Ray workers):
task plugins load on first use, the verl reward manager registers from
``verl_reason_rft.verl_plugin`` only.
"""

__version__ = "0.1.0"
