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


# The seed's curl example for POST /api/accessibility-preferences (AccessibilityPreferencesRequest).
SEED_PREFERENCES = {
    "sessionId": "sess_abc123",
    "accessibilityTheme": "deuteranopia",
    "darkModePreference": True,
    "reducedMotion": False,
    "logoInteractionCount": 5,
    "sessionDuration": 180000,
}

# The seed's BrandEngagementRequest interface, filled as the website would fill it.
SEED_ENGAGEMENT = {
    "sessionId": "sess_abc123",
    "logoInteractions": [
        {"timestamp": 1767225600000, "theme": "default", "duration": 1840},
        {"timestamp": 1767225642137, "theme": "deuteranopia", "duration": 912.4},
    ],
    "scrollDepthPercentage": 85,
    "timeSpentPerSection": {"hero": 12000, "ecosystem": 45210.5, "contact": 8000},
    "coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08},
    "accessibilityFeaturesUsed": ["reduced-motion", "keyboard-navigation"],
}
