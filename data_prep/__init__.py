"""Dataset converters (Reason-RFT-CoT-Dataset to verl parquet) and the sample-data generator."""
