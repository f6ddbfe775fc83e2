<?php
// Live check of a running provd with PHP's SoapClient (Debian: php-cli, php-soap), the second
// independent SOAP client CI drives (the first is zeep, tests/zeep/check_live.py).
//
// Usage:  php tests/php/check_live.php URL USER PASSWORD
//         URL is the server's base URL; USER/PASSWORD a user in domain "master" with that
//         static password and an authenticator free to assign.
//
// Checks: the served WSDL loads unedited; provisioningExecute(PROVISIONCMD_SERVER_TIME)
// answers STAT_SUCCESS with an errorStack object (written with xsi:type); PROVISIONCMD_REGISTER
// returns the activation code with attributeOptions/masked = true and the serial number
// unmasked; a wrong password is a normal response (RET_FAILURE, STAT_INVCREDENTIALS) with an
// errorStack entry and a typed empty resultAttribute, not a SoapFault.
// Prints one line per check, then "php: N passed, 0 failed"; exits non-zero on a failure.

function fail($msg) { fwrite(STDOUT, "FAIL: $msg\n"); exit(1); }
function check($cond, $msg) { if (!$cond) { fail($msg); } }

if ($argc != 4) { fail("usage: check_live.php URL USER PASSWORD"); }
[$_, $url, $user, $password] = $argv;

const XSD = 'http://www.w3.org/2001/XMLSchema';
function attr($id, $value) {
    return ['value' => new SoapVar($value, XSD_STRING, 'string', XSD), 'attributeID' => $id];
}
function as_list($x) {
    if ($x === null) { return []; }
    return is_array($x) ? $x : [$x];
}

$passed = 0;
try {
    $client = new SoapClient($url . '?wsdl', ['cache_wsdl' => WSDL_CACHE_NONE, 'exceptions' => true]);
} catch (Throwable $e) {
    fail("WSDL does not load: " . $e->getMessage());
}
echo "wsdl: loaded {$url}?wsdl\n"; $passed++;

try {
    $r = $client->provisioningExecute(['cmd' => 'PROVISIONCMD_SERVER_TIME', 'attributeSet' => []]);
} catch (SoapFault $f) { fail("SERVER_TIME: SoapFault " . $f->getMessage()); }
$res = $r->results;
check($res->resultCodes->statusCodeEnum === 'STAT_SUCCESS', "SERVER_TIME status " . $res->resultCodes->statusCodeEnum);
check(is_object($res->errorStack), "SERVER_TIME errorStack is not an object");
$attrs = as_list($res->resultAttribute->attributes ?? null);
check(count($attrs) === 1 && $attrs[0]->attributeID === 'PROVFLD_SERVER_TIME', "SERVER_TIME attributes");
check((int)$attrs[0]->value > 1600000000, "SERVER_TIME value " . $attrs[0]->value);
echo "server time: {$attrs[0]->value}\n"; $passed++;

try {
    $r = $client->provisioningExecute(['cmd' => 'PROVISIONCMD_REGISTER', 'attributeSet' => ['attributes' => [
        attr('PROVFLD_USERID', $user), attr('PROVFLD_DOMAIN', 'master'),
        attr('PROVFLD_STATIC_PASSWORD', $password)]]]);
} catch (SoapFault $f) { fail("REGISTER: SoapFault " . $f->getMessage()); }
$res = $r->results;
check($res->resultCodes->statusCodeEnum === 'STAT_SUCCESS', "REGISTER status " . $res->resultCodes->statusCodeEnum);
$by = [];
foreach (as_list($res->resultAttribute->attributes) as $a) { $by[$a->attributeID] = $a; }
check(isset($by['PROVFLD_ACTIVATION_CODE']), "REGISTER has no activation code");
$code = $by['PROVFLD_ACTIVATION_CODE'];
check(isset($code->attributeOptions) && $code->attributeOptions->masked === true, "activation code is not masked");
check(strlen((string)$code->value) > 0, "activation code is empty");
check(!isset($by['PROVFLD_SERIAL_NO']->attributeOptions), "serial number is masked");
echo "register: serial {$by['PROVFLD_SERIAL_NO']->value}, activation code masked\n"; $passed++;

try {
    $r = $client->provisioningExecute(['cmd' => 'PROVISIONCMD_REGISTER', 'attributeSet' => ['attributes' => [
        attr('PROVFLD_USERID', $user), attr('PROVFLD_DOMAIN', 'master'),
        attr('PROVFLD_STATIC_PASSWORD', 'wrong-' . $password)]]]);
} catch (SoapFault $f) { fail("wrong password: SoapFault " . $f->getMessage()); }
$res = $r->results;
check($res->resultCodes->returnCodeEnum === 'RET_FAILURE', "wrong password return " . $res->resultCodes->returnCodeEnum);
check($res->resultCodes->statusCodeEnum === 'STAT_INVCREDENTIALS', "wrong password status " . $res->resultCodes->statusCodeEnum);
check(is_object($res->resultAttribute), "failed call's resultAttribute is not an object");
$errors = as_list($res->errorStack->errors ?? null);
check(count($errors) === 1 && strpos($errors[0]->errorDesc, 'STAT_INVCREDENTIALS') === 0, "wrong password errorStack");
echo "wrong password: STAT_INVCREDENTIALS ({$errors[0]->errorCode})\n"; $passed++;

echo "php: $passed passed, 0 failed\n";
