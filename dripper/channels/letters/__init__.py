"""Letters: the window-envelope layout, PDF rendering, print batches and print adapters."""
