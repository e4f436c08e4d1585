"""Tracks of steps per funnel stage, the planner that puts each lead's next touch in the
store, and diffs of campaign edits."""
