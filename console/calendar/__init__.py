"""The business's calendar: appointments and the owner's feed."""
