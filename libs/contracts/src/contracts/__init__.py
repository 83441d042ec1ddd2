"""Batchyard's public event contracts."""

from contracts.codec import PoisonMessage, decode, encode, envelope_for
from contracts.envelope import Envelope
from contracts.topics import Topics, job_id_for

__all__ = ["Envelope", "PoisonMessage", "Topics", "decode", "encode", "envelope_for", "job_id_for"]
