"""What a client reads before it starts: the SMART configuration and OpenID configuration
documents, and the CapabilityStatement's ``rest.security``. The endpoints that serve them
are facade/web/smart/discovery.py.
"""

from __future__ import annotations

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
CONTEXT_SCOPES = ["openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access"]
STYLE = {
    "color_background": "#ffffff",
    "color_error": "#a00000",
    "color_highlight": "#1a5fb4",
    "color_modal_backdrop": "",
    "color_success": "#26a269",
    "color_text": "#1a1a1a",
    "dim_border_radius": "4px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, sans-serif",
    "font_family_heading": "system-ui, sans-serif",
}


def endpoints(base: str) -> dict:
    return {
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": f"{base}/auth/token",
        "introspection_endpoint": f"{base}/auth/introspect",
        "revocation_endpoint": f"{base}/auth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
    }


def rest_security(base: str) -> dict:
    """CapabilityStatement ``rest.security``: the SMART service coding and the SMART 1.0 ``oauth-uris`` extension."""
    urls = endpoints(base)
    return {
        "service": [
            {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": urls["authorization_endpoint"]},
                    {"url": "token", "valueUri": urls["token_endpoint"]},
                    {"url": "introspect", "valueUri": urls["introspection_endpoint"]},
                    {"url": "revoke", "valueUri": urls["revocation_endpoint"]},
                ],
            }
        ],
    }


def smart_configuration(base: str, types: list[str]) -> dict:
    resource_scopes = [f"{context}/*.{access}" for context in ("patient", "user", "system") for access in ("rs", "read")]
    resource_scopes += [f"patient/{name}.rs" for name in types] + [f"user/{name}.rs" for name in types]
    return {
        "issuer": base,
        **endpoints(base),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": CONTEXT_SCOPES + resource_scopes,
        "response_types_supported": ["code"],
        "capabilities": CAPABILITIES,
        "code_challenge_methods_supported": ["S256"],
    }


def openid_configuration(base: str) -> dict:
    return {
        "issuer": base,
        **endpoints(base),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "name"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
    }
