"""Every query dripper runs, one module per thing asked about (touches, leads, print
batches, calls, sending counters, reports, the dashboard, metrics, sessions, campaign
versions, held touches), plus `staging`, the set-based merge of a large import."""
