"""The parts of out_wasm_guest.http that need no host: the request budget and how WIT error
codes become exceptions. Requests themselves are tested through the real host by
tests/e2e/tests/suite/http.rs (the http example). Run by guests/python/test."""

import unittest

from out_wasm_guest import http
from wit_world.imports import wasi_http_types as wit


class Budget(unittest.TestCase):
    def test_a_tenth_is_kept_back_and_at_least_50_ms(self):
        self.assertAlmostEqual(http.request_budget(10.0), 9.0)
        self.assertAlmostEqual(http.request_budget(1.0), 0.9)
        self.assertAlmostEqual(http.request_budget(0.3), 0.25)
        self.assertEqual(http.request_budget(0.04), 0.0)


class Failures(unittest.TestCase):
    def test_a_denied_request_names_the_grant(self):
        err = http._failure(wit.ErrorCode_HttpRequestDenied())
        self.assertIsInstance(err, http.RequestDenied)
        self.assertIn("wasm_allow_net", str(err))

    def test_transport_failures_name_the_wit_error_code(self):
        err = http._failure(wit.ErrorCode_ConnectionRefused())
        self.assertIsInstance(err, http.TransportError)
        self.assertNotIsInstance(err, http.Timeout)
        self.assertEqual(str(err), "request failed: connection-refused")
        self.assertIsInstance(err.code, wit.ErrorCode_ConnectionRefused)
        self.assertEqual(
            str(http._failure(wit.ErrorCode_TlsCertificateError())), "request failed: tls-certificate-error"
        )
        self.assertEqual(
            str(http._failure(wit.ErrorCode_InternalError("boom"))), "request failed: internal-error('boom')"
        )
        self.assertEqual(
            str(http._failure(wit.ErrorCode_DnsError(wit.DnsErrorPayload("NXDOMAIN", None)))),
            "request failed: dns-error(rcode='NXDOMAIN', info-code=None)",
        )

    def test_the_hosts_timeouts_are_timeouts(self):
        for code in (wit.ErrorCode_ConnectionTimeout(), wit.ErrorCode_ConnectionReadTimeout()):
            err = http._failure(code)
            self.assertIsInstance(err, http.Timeout)
            self.assertIsInstance(err, TimeoutError)
            self.assertTrue(str(err).startswith("request failed: connection-"), str(err))


if __name__ == "__main__":
    unittest.main()
