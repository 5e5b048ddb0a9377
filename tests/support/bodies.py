"""Request bodies several test modules send."""

# The original design document's curl example for POST /api/leads, exactly as its -d argument,
# with the `// Brand-specific fields` comment line removed.
SEED_BODY = """{
    "firstName": "John",
    "lastName": "Doe",
    "email": "john.doe@example.com",
    "leadSource": "contact_form",
    "gdprConsent": true,
    "companyName": "Acme Corp",
    "inquiryDetails": "Interested in technical deep dive",

    "accessibilityTheme": "protanopia",
    "deviceType": "desktop",
    "coreWebVitals": {
      "lcp": 2300,
      "fid": 85,
      "cls": 0.08
    },
    "logoInteractions": 3,
    "timeOnSite": 145000,
    "pagesViewed": ["/", "/ecosystem", "/contact"]
  }"""
