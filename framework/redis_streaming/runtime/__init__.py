"""The stream-processing runtime: jobs of operators over partitioned topics."""
