"""What the marketer sees: the funnel report, its formats and charts, previews."""
