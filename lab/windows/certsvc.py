"""An AD CS certification authority: its revocation database, CRL schedule and CRL publication.

AD CS writes a new base CRL every ``CRLPeriodUnits CRLPeriod`` (a week by default) and a delta
every ``CRLDeltaPeriodUnits CRLDeltaPeriod`` (a day).  A CRL is valid for its period plus the
overlap (``CRLOverlapUnits``, ``CRLDeltaOverlapUnits``); its "Next CRL Publish" extension says when
the next one is due.  Each publication goes to the local ``CertEnroll`` folder and is copied to the
HTTP distribution point (``CRLPublicationURLs``).

``certutil -crl`` (:meth:`CertificationAuthority.publish`) publishes a fresh base and delta CRL at
once; it needs no CertSvc restart.  When the scheduled base publication is *stalled* (the reason
a CRL expires: a CA restored from an old state, a broken publishing job), the CA keeps
publishing deltas, and the base CRL runs out: "Expiring" past 80 % of its lifetime, then
"Expired".  After ``certutil -crl`` the schedule runs again.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization

from lab.estate.pki import CertificateAuthority, EnterprisePKI, RevokedEntry

_UNITS = {
    "Hours": datetime.timedelta(hours=1),
    "Days": datetime.timedelta(days=1),
    "Weeks": datetime.timedelta(weeks=1),
    "Months": datetime.timedelta(days=30),
    "Years": datetime.timedelta(days=365),
}
CERTSVC = "CertSvc"


def _span(units: int, period: str) -> datetime.timedelta:
    return units * _UNITS[period]


@dataclass(frozen=True)
class CrlSchedule:
    """The CA's CRL registry values (what ``certutil -getreg CA\\CRLPeriod`` shows)."""

    period_units: int = 1
    period: str = "Weeks"
    # Overlaps longer than AD CS's automatic ones (12 h / 10 %): a CRL then never comes within two
    # days (base) or the last fifth of its life (delta) of nextUpdate before its successor is
    # published, so a healthy CA is never "expiring", however long the lab runs.
    overlap_units: int = 3
    overlap_period: str = "Days"
    delta_units: int = 1
    delta_period: str = "Days"
    delta_overlap_units: int = 8
    delta_overlap_period: str = "Hours"

    @property
    def base_period(self) -> datetime.timedelta:
        return _span(self.period_units, self.period)

    @property
    def base_overlap(self) -> datetime.timedelta:
        return _span(self.overlap_units, self.overlap_period)

    @property
    def delta_period_span(self) -> datetime.timedelta | None:
        return _span(self.delta_units, self.delta_period) if self.delta_units else None

    @property
    def delta_overlap(self) -> datetime.timedelta:
        return _span(self.delta_overlap_units, self.delta_overlap_period)


OFFLINE_ROOT_SCHEDULE = CrlSchedule(
    period_units=13, period="Weeks", overlap_units=6, overlap_period="Hours", delta_units=0
)
"""An offline root: a base CRL every 13 weeks, published by hand, no delta."""


@dataclass(frozen=True)
class PublishedCrl:
    """A CRL file as published: name, DER, and the times it carries."""

    file: str
    der: bytes
    number: int
    this_update: datetime.datetime
    next_update: datetime.datetime
    next_publish: datetime.datetime
    delta: bool

    @property
    def pem(self) -> bytes:
        from cryptography import x509  # noqa: PLC0415 (only needed when writing files)

        return x509.load_der_x509_crl(self.der).public_bytes(serialization.Encoding.PEM)


@dataclass
class CertificationAuthority:
    """One CA: what it revoked, how it publishes, and the CRLs in CertEnroll and at the CDP."""

    authority: CertificateAuthority
    pki: EnterprisePKI
    schedule: CrlSchedule = field(default_factory=CrlSchedule)
    revoked: list[RevokedEntry] = field(default_factory=list)
    cert_enroll: dict[str, PublishedCrl] = field(default_factory=dict)
    cdp: dict[str, PublishedCrl] = field(default_factory=dict)
    base_stalled: bool = False
    copy_to_cdp: bool = True
    next_number: int = 1

    @property
    def name(self) -> str:
        return self.authority.name

    @property
    def base(self) -> PublishedCrl | None:
        return self.cert_enroll.get(self.authority.crl_file)

    @property
    def delta(self) -> PublishedCrl | None:
        return self.cert_enroll.get(self.authority.delta_crl_file)

    def revoke(self, serial: int, when: datetime.datetime) -> None:
        if all(entry.serial != serial for entry in self.revoked):
            self.revoked.append(RevokedEntry(serial, when))

    def publish(self, now: datetime.datetime, *, delta_only: bool = False) -> list[PublishedCrl]:
        """``certutil -crl`` (or ``certutil -crl delta``): sign, write CertEnroll, copy to the CDP."""
        published = []
        if not delta_only:
            published.append(self._sign_base(now))
            self.base_stalled = False  # a manual publication restarts the schedule
        base = self.base
        if base is not None and self.schedule.delta_period_span is not None:
            published.append(self._sign_delta(now, base.number))
        for crl in published:
            self.cert_enroll[crl.file] = crl
            if self.copy_to_cdp:
                self.cdp[crl.file] = crl
        return published

    def refresh(self, now: datetime.datetime) -> None:
        """Run the schedule up to ``now``: a due base CRL (unless stalled) and a due delta."""
        base = self.base
        if base is not None and not self.base_stalled and now >= base.next_publish:
            self.publish(now)
            return
        delta = self.delta
        if base is not None and delta is not None and now >= delta.next_publish:
            self.publish(now, delta_only=True)

    def _number(self) -> int:
        number, self.next_number = self.next_number, self.next_number + 1
        return number

    def _sign_base(self, now: datetime.datetime) -> PublishedCrl:
        # AD CS back-dates thisUpdate by its clock-skew allowance (10 minutes).
        this_update = now - datetime.timedelta(minutes=10)
        next_publish = now + self.schedule.base_period
        next_update = next_publish + self.schedule.base_overlap
        return self._sign(self.authority.crl_file, this_update, next_update, next_publish, None)

    def _sign_delta(self, now: datetime.datetime, base_number: int) -> PublishedCrl:
        period = self.schedule.delta_period_span
        assert period is not None
        this_update = now - datetime.timedelta(minutes=10)
        next_publish = now + period
        next_update = next_publish + self.schedule.delta_overlap
        return self._sign(self.authority.delta_crl_file, this_update, next_update, next_publish, base_number)

    def _sign(
        self,
        file: str,
        this_update: datetime.datetime,
        next_update: datetime.datetime,
        next_publish: datetime.datetime,
        delta_of: int | None,
    ) -> PublishedCrl:
        number = self._number()
        # A delta lists what was revoked since its base; the lab's revocations all predate the
        # base, so a delta is empty unless something was revoked after the base was signed.
        base = self.base
        revoked = self.revoked if delta_of is None or base is None else [
            entry for entry in self.revoked if entry.revoked_at > base.this_update
        ]  # fmt: skip
        crl = self.pki.crl(
            self.authority,
            revoked,
            number=number,
            this_update=this_update.replace(microsecond=0),
            next_update=next_update.replace(microsecond=0),
            next_publish=next_publish.replace(microsecond=0),
            delta_of=delta_of,
        )
        return PublishedCrl(
            file=file,
            der=crl.public_bytes(serialization.Encoding.DER),
            number=number,
            this_update=this_update.replace(microsecond=0),
            next_update=next_update.replace(microsecond=0),
            next_publish=next_publish.replace(microsecond=0),
            delta=delta_of is not None,
        )

    def install(self, crl: PublishedCrl) -> None:
        """Place a CRL (a customer's file) in CertEnroll and at the CDP as if the CA had published it."""
        self.cert_enroll[crl.file] = crl
        self.cdp[crl.file] = crl
        self.next_number = max(self.next_number, crl.number + 1)

    def publication_urls(self) -> tuple[str, ...]:
        """``CRLPublicationURLs`` as stored: the local folder (base and delta), the HTTP CDP."""
        local = r"65:C:\Windows\system32\CertSrv\CertEnroll\%3%8%9.crl"
        http = "6:" + self.pki.url("%3%8%9.crl").replace("%25", "%")
        return (local, http)


__all__ = [
    "CERTSVC",
    "OFFLINE_ROOT_SCHEDULE",
    "CertificationAuthority",
    "CrlSchedule",
    "PublishedCrl",
]
