"""Numbers over periods: KPIs, agency reports, their exports, owners' digests."""
