"""Leads: the lead record, CSV reading and import, postal addresses, and the events a lead causes."""
