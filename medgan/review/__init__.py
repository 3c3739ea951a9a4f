"""Review of synthetic scans: the audit log, reviewer identities, approvals and reader studies."""

from medgan.review.approvals import approved_hashes
from medgan.review.audit import AuditLog

__all__ = ["AuditLog", "approved_hashes"]
