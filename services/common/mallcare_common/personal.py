"""Personal data: what may leave the service that holds it."""
import re


def mask_contact(customer):
    """Phone as 138****5678, e-mail as w***@example.com; None without either."""
    if customer.get("phone"):
        digits = re.sub(r"\D", "", customer["phone"])
        return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"
    if customer.get("email"):
        local, _, domain = customer["email"].partition("@")
        return local[:1] + "***@" + domain
    return None
