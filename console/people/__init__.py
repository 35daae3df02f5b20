"""Who may do what: sign-in, accounts, tenancy, audit, API tokens, availability."""
