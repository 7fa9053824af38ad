"""Development-only code: the sample REST API for the demo and the tests. Never in the wheel."""
