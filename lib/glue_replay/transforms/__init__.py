"""Pure DataFrame -> DataFrame transforms: no I/O, no actions, no sources, no boto3."""
