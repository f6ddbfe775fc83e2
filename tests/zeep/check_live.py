#!/usr/bin/env python3
"""Live check of a running provd with zeep, a real Python SOAP client.

Usage:  python3 tests/zeep/check_live.py URL USER PASSWORD
        URL is the server's base URL (http://127.0.0.1:8888/); USER/PASSWORD are a user in
        domain "master" with that static password and an authenticator free to assign.
        Install the client with: pip install -r tests/zeep/requirements.txt

Checks: the served WSDL (GET /?wsdl, schemas at /schemas/<Name>.xsd) loads unedited and
names URL as its address; provisioningExecute(PROVISIONCMD_SERVER_TIME) works;
dsappSRPRegister succeeds with the right password and reports STAT_INVCREDENTIALS (as a
normal response, not a Fault) with a wrong one; a malformed POST yields HTTP 500 and a
SOAP Client Fault. Prints one line per check and "OK"; exits non-zero on any failure.
Note: a successful registration is left pending on the server (it expires by itself).
"""
import re
import sys
import time

import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ACTIVATION_ALPHABET = set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def call(op, **kwargs):
    try:
        return op(**kwargs)
    except Fault as exc:
        fail("unexpected SOAP Fault: %s (code %s)" % (exc.message, exc.code))
    except Exception as exc:  # noqa: BLE001 - report any transport/parse error plainly
        fail("call failed: %r" % exc)


def check_wsdl(url):
    try:
        client = zeep.Client(url + "?wsdl", settings=zeep.Settings(strict=True))
    except Exception as exc:  # noqa: BLE001
        fail("WSDL %s?wsdl does not load in zeep: %r" % (url, exc))
    addresses = [p.binding_options.get("address")
                 for s in client.wsdl.services.values() for p in s.ports.values()]
    check(len(addresses) == 1, "expected exactly one port, got %s" % addresses)
    check(addresses[0].rstrip("/") == url.rstrip("/"),
          "service address %s != %s" % (addresses[0], url))
    print("wsdl: loaded %s?wsdl, address %s" % (url, addresses[0]))
    return client


def check_server_time(client):
    res = call(client.service.provisioningExecute, cmd="PROVISIONCMD_SERVER_TIME", attributeSet={})
    codes = res.resultCodes
    check(codes.returnCodeEnum == "RET_SUCCESS" and codes.statusCode == 0,
          "SERVER_TIME result codes: %s" % codes)
    attrs = res.resultAttribute.attributes if res.resultAttribute is not None else []
    check(len(attrs) == 1 and attrs[0].attributeID == "PROVFLD_SERVER_TIME",
          "SERVER_TIME attributes: %s" % attrs)
    value = attrs[0].value
    check(isinstance(value, int) and not isinstance(value, bool),
          "PROVFLD_SERVER_TIME is %r (%s), expected an int" % (value, type(value).__name__))
    check(abs(value - time.time()) <= 300, "server time %d is off by more than 300 s" % value)
    print("provisioningExecute(SERVER_TIME): %d (RET_SUCCESS)" % value)


def register(client, user, password):
    return call(client.service.dsappSRPRegister, componentType="zeep live check",
                user={"userID": user, "domain": "master"},
                credential={"staticPassword": password})


def check_register(client, user, password):
    res = register(client, user, password)
    status = res.status.resultCodes.statusCodeEnum
    check(status == "STAT_SUCCESS", "dsappSRPRegister status %s: %s" % (status, res.status))
    r = res.result
    check(r is not None, "dsappSRPRegister: no result")
    check(re.fullmatch(r"[A-Za-z0-9]{8}", r.registrationID or "") is not None,
          "registrationID %r is not 8 alphanumerics" % r.registrationID)
    ap = r.activationPassword or ""
    check(len(ap) == 9 and set(ap) <= ACTIVATION_ALPHABET,
          "activationPassword %r is not 9 chars of %s" % (ap, "".join(sorted(ACTIVATION_ALPHABET))))
    check(len(r.serialNumber or "") == 10, "serialNumber %r is not 10 chars" % r.serialNumber)
    print("dsappSRPRegister: STAT_SUCCESS, registrationID %s, serial %s"
          % (r.registrationID, r.serialNumber))


def check_register_bad_password(client, user, password):
    res = register(client, user, password + "-wrong")
    codes = res.status.resultCodes
    check(codes.statusCodeEnum == "STAT_INVCREDENTIALS" and codes.returnCode == -1,
          "wrong password gave %s" % codes)
    errors = res.status.errorStack.errors if res.status.errorStack is not None else []
    check(len(errors) >= 1, "wrong password: empty errorStack")
    print("dsappSRPRegister(wrong password): STAT_INVCREDENTIALS, returnCode -1, %d error(s)"
          % len(errors))


def check_malformed(url):
    resp = requests.post(url, data=b"<SOAP-ENV:Envelope><unclosed",
                         headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30)
    check(resp.status_code == 500, "malformed body: HTTP %d, expected 500" % resp.status_code)
    try:
        root = etree.fromstring(resp.content)
    except etree.XMLSyntaxError as exc:
        fail("malformed body: response is not XML (%s): %r" % (exc, resp.content[:200]))
    fault = root.find("{%s}Body/{%s}Fault" % (SOAP_NS, SOAP_NS))
    check(fault is not None, "malformed body: no SOAP Fault in %r" % resp.content[:200])
    code = (fault.findtext("faultcode") or "").strip()
    check(code.split(":")[-1].endswith("Client"), "faultcode %r does not end in Client" % code)
    print("malformed POST: HTTP 500, faultcode %s" % code)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: check_live.py URL USER PASSWORD")
    url, user, password = sys.argv[1:]
    url = url.rstrip("/") + "/"
    client = check_wsdl(url)
    check_server_time(client)
    check_register(client, user, password)
    check_register_bad_password(client, user, password)
    check_malformed(url)
    print("OK")


if __name__ == "__main__":
    main()
