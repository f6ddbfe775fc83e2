#!/usr/bin/env python3
"""An implementation of docs/protocols.md written from the document alone (Python 3 and the
`cryptography` package): recomputes the dsapp-v3 vector from its G onward, and the DSAPP-SRP
record, MDL device code, AM2, signature and at-rest vectors. Run: python3 docs/check_vectors.py"""
import hashlib, hmac, re
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
doc=open(__import__('os').path.join(__import__('os').path.dirname(__file__), 'protocols.md')).read()
blk=doc[doc.index('```vector dsapp-v3'):]; blk=blk[:blk.index('```\n',10)]
V={}
for l in blk.split('\n')[1:]:
    if ' = ' in l: k,v=l.split(' = ',1); V[k]=v
p=2**256-2**224+2**192+2**96-1; n=0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
a=-3
def add(P,Q):
    if P is None: return Q
    if Q is None: return P
    (x1,y1),(x2,y2)=P,Q
    if x1==x2 and (y1+y2)%p==0: return None
    if P==Q: l=(3*x1*x1+a)*pow(2*y1,-1,p)%p
    else: l=(y2-y1)*pow(x2-x1,-1,p)%p
    x3=(l*l-x1-x2)%p; return (x3,(l*(x1-x3)-y1)%p)
def mul(k,P):
    R=None
    while k:
        if k&1: R=add(R,P)
        P=add(P,P); k>>=1
    return R
enc=lambda P: b'\x04'+P[0].to_bytes(32,'big')+P[1].to_bytes(32,'big')
def pl(b):
    assert len(b)<128; return bytes([len(b)])+b
lv=lambda *a: b''.join(pl(x) for x in a)
H=bytes.fromhex
G=H(V['G']); Gp=(int.from_bytes(G[1:33],'big'),int.from_bytes(G[33:],'big'))
CI=lv(b'DSAPP/v3',V['REGISTRATIONID'].encode()); assert CI.hex().upper()==V['CI']
ya=int(V['ya'],16); yb=int(V['yb'],16)
Ya=mul(ya,Gp); Yb=mul(yb,Gp); cn=H(V['cn']); adb=H(V['ADb']); sid=H(V['sid'])
assert (enc(Ya)[1:]+cn).hex().upper()==V['PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE']
assert enc(Yb)[1:].hex().upper()==V['PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY']
K=mul(ya,Yb)[0].to_bytes(32,'big'); assert K==mul(yb,Ya)[0].to_bytes(32,'big')
T=lv(enc(Ya),cn)+lv(enc(Yb),adb); assert len(T)==154
ISK=hashlib.sha256(lv(b'CPaceP256_XMD:SHA-256_SSWU_NU__ISK',sid,K)+T).digest()
assert ISK.hex().upper()==V['ISK']
def hkdf(salt,ikm,info,L=32):
    prk=hmac.new(salt,ikm,hashlib.sha256).digest(); out=b''; t=b''; i=1
    while len(out)<L: t=hmac.new(prk,t+info+bytes([i]),hashlib.sha256).digest(); out+=t; i+=1
    return out[:L]
key=lambda x: hkdf(sid,ISK,b'DSAPP/v3 '+x.encode())
for x in ['confirm server','confirm client','derivation','enc activation code','mac activation code','enc event reactivation counter','mac event reactivation counter']:
    assert key(x).hex().upper()==V['K_'+x], x
tag=lambda k,m: hmac.new(k,m,hashlib.sha256).digest()[:16]
assert tag(key('confirm server'),b'server'+T).hex().upper()==V['PROVFLD_ENCRYPTED_NONCES']
assert tag(key('confirm client'),b'client'+T).hex().upper()==V['PROVFLD_ENCRYPTED_SERVER_NONCE']
def field(label,iv,pt):
    c=Cipher(algorithms.AES(key('enc '+label)),modes.CTR(iv)).encryptor().update(pt)
    return (c+tag(key('mac '+label),label.encode()+iv+c)).hex().upper()
code=V['activation code plaintext'].encode()
assert code==('DSAPP/v3 XFAD;serial=%s;key=%s;otp=TOTP-HMAC-SHA256;digits=6;step=30;counter=%s'%(V['serial'],V['otp_key'],V['counter'])).encode()
z=bytes(16)
assert field('activation code',z,code)==V['v1 PROVFLD_ACTIVATION_CODE']
assert field('event reactivation counter',z,V['counter'].encode())==V['v1 PROVFLD_EVENT_REACTIVATION_COUNTER']
assert field('activation code',H(V['v2 PROVFLD_ACTIVATION_CODE_IV']),code)==V['v2 PROVFLD_ACTIVATION_CODE']
assert field('event reactivation counter',H(V['v2 PROVFLD_EVENT_REACTIVATION_COUNTER_IV']),V['counter'].encode())==V['v2 PROVFLD_EVENT_REACTIVATION_COUNTER']
d=int.from_bytes(hmac.new(key('derivation'),b'derivation'+V['serial'].encode(),hashlib.sha256).digest()[:8],'big')%10**15
assert '%015d'%d==V['PROVFLD_DERIVATION_CODE']
h=hmac.new(H(V['otp_key']),(int(V['otp_time'])//30).to_bytes(8,'big'),hashlib.sha256).digest(); o=h[-1]&15
assert '%06d'%((int.from_bytes(h[o:o+4],'big')&0x7fffffff)%10**6)==V['PROVFLD_DP_RESPONSE']
print('dsapp-v3 vector: independent Python check OK')
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import padding
def block(name):
    b=doc[doc.index("```vector "+name+"\n"):]; b=b[:b.index("```\n",10)]
    return dict(l.split(" = ",1) for l in b.split("\n")[1:] if " = " in l)
doc=open('/work/wt/i16/docs/protocols.md').read()
def block(name):
    b=doc[doc.index('```vector '+name+'\n'):]; b=b[:b.index('```\n',10)]
    return dict(l.split(' = ',1) for l in b.split('\n')[1:] if ' = ' in l)
H=bytes.fromhex
def hkdf(salt,ikm,info,L=32):
    prk=hmac.new(salt,ikm,hashlib.sha256).digest(); return hmac.new(prk,info+b'\x01',hashlib.sha256).digest()[:L]
# device code
V=block('mdl-device-code')
t=hmac.new(H(V['license']),b'DSAPP-MDL/v1 dc'+V['serial'].encode()+H(V['challenge'])+bytes([int(V['type'])])+int(V['id']).to_bytes(4,'big'),hashlib.sha256).digest()[:5]
assert t.hex().upper()==V['tag']
n=int(V['type'])*2**72+int(V['id'])*2**40+int.from_bytes(t,'big'); s='%025d'%n
tot=0
for i,c in enumerate(reversed(s)):
    d=int(c)
    if i%2==0: d=2*d; d=d-9 if d>9 else d
    tot+=d
assert s+str((10-tot%10)%10)==V['PROVFLD_DEVICE_CODE']
# AM2
V=block('mdl-am2'); w=H(V['wire']); salt=H(V['challenge'])+int(V['id']).to_bytes(4,'big')
ke=hkdf(salt,H(V['license']),b'DSAPP-MDL/v1 am2 enc'); km=hkdf(salt,H(V['license']),b'DSAPP-MDL/v1 am2 mac')
iv,c,tag=w[:16],w[16:-32],w[-32:]
assert hmac.compare_digest(hmac.new(km,b'DSAPP-MDL/v1 am2'+V['serial'].encode()+iv+c,hashlib.sha256).digest(),tag)
d=Cipher(algorithms.AES(ke),modes.CBC(iv)).decryptor(); pt=d.update(c)+d.finalize()
u=padding.PKCS7(128).unpadder(); pt=(u.update(pt)+u.finalize()).decode()
assert pt=='DSAPP-MDL/v1 am2;seq=%s;nonce=%s;key=%s'%(V['seq'],V['nonce'],V['instance key']), pt
sig=int.from_bytes(hmac.new(H(V['instance key']),b'DSAPP-MDL/v1 confirm'+H(V['nonce'])+V['serial'].encode()+bytes([int(V['seq'])]),hashlib.sha256).digest()[:8],'big')%10**16
assert '%016d'%sig==V['PROVFLD_SIGNATURE']
# at rest
V=block('at-rest'); s=H(V['sealed'])
assert AESGCM(H(V['master key'])).decrypt(s[:12],s[12:],V['context'].encode()).hex().upper()==V['plaintext']
# SRP record under the vector's K
V=block('dsapp-srp'); K=H(V['K']); sl=H(V['s'])
ke=hkdf(sl,K,b'DSAPP-SRP/v1 enc'); km=hkdf(sl,K,b'DSAPP-SRP/v1 mac'); I=V['I'].encode(); iv=H(V['IV'])
p=padding.PKCS7(128).padder(); pt=p.update(V['plaintext'].encode())+p.finalize()
e=Cipher(algorithms.AES(ke),modes.CBC(iv)).encryptor(); c=e.update(pt)+e.finalize()
assert c.hex().upper()==V['C']
assert hmac.new(km,b'DSAPP-SRP/v1'+len(I).to_bytes(2,'big')+I+iv+c,hashlib.sha256).hexdigest().upper()==V['MAC']
print('mdl-device-code, mdl-am2, at-rest, dsapp-srp record: independent Python check OK')
