#!/bin/sh
# Makes a test CA and OCSP responses with `openssl ocsp` as the responder,
# for test_ocsp (tlsctx_ocsp.c) and test_ocsp.py: in directory $1,
#   ca.crt, ca.key      the CA (RSA)          ca2.*  another CA
#   leaf.crt/.key       a certificate of ca (serial 0x1001), full.pem: leaf+ca
#   other.crt           another of ca (0x1002); revoked.crt (0x1003), revoked
#   resp.crt            a delegated responder of ca (EC, OCSPSigning EKU)
#   noeku.crt           a certificate of ca without that EKU
#   good.der            for leaf, SHA-1 CertID, signed by ca, nextUpdate +2 days
#   good256.der         the same with a SHA-256 CertID
#   bykey.der           ResponderID byKey, no nextUpdate
#   deleg.der           signed by resp.crt (included)
#   noeku.der           signed by noeku.crt (included): refused
#   stranger.der        signed by ca2 (included): refused
#   other.der           for other.crt; revoked.der for revoked.crt
#   stray.crt           of ca (0x1004) but not in the responder's index
#   unknown.der         for stray.crt: status unknown
#   nocert.der          signed by resp.crt, which it does not carry
#   sha1.der            signed by ca with SHA-1
#   pss.der             signed by ca with RSA-PSS (SHA-256)
#   sha384.der, sha512.der        signed by ca with SHA-384, SHA-512
#   deleg384.der, deleg512.der    the same by resp.crt (ECDSA)
# Each command's output goes to $1/log; exit status nonzero on any failure.
set -eu
d=$1
cd "$d"
exec 3>>log
run() { "$@" >&3 2>&3; }

cnf=ext.cnf
cat >$cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost
extendedKeyUsage = serverAuth
[ocsp]
basicConstraints = CA:FALSE
extendedKeyUsage = OCSPSigning
[plain]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF

for ca in ca ca2; do
	run openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.crt \
		-subj "/CN=portier test $ca" -days 30 -extensions ca -config $cnf
done
# name serial ext keytype [ca]
mk() {
	if [ "$4" = ec ]; then
		run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout $1.key -out $1.csr -subj "/CN=$1" -config $cnf
	else
		run openssl req -new -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr \
			-subj "/CN=localhost" -config $cnf
	fi
	run openssl x509 -req -in $1.csr -CA ${5:-ca}.crt -CAkey ${5:-ca}.key -set_serial $2 \
		-days 20 -extfile $cnf -extensions $3 -out $1.crt
}
mk leaf 0x1001 leaf rsa
mk other 0x1002 leaf rsa
mk revoked 0x1003 leaf rsa
mk stray 0x1004 leaf rsa
mk resp 0x2001 ocsp ec
mk noeku 0x2002 plain ec
mk stranger 0x3001 ocsp rsa ca2
cat leaf.crt ca.crt >full.pem

exp=$(date -u -d '+20 days' +%y%m%d%H%M%SZ)
rev=$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t1001\tunknown\t/CN=localhost\n' "$exp" >index.txt
printf 'V\t%s\t\t1002\tunknown\t/CN=localhost\n' "$exp" >>index.txt
printf 'R\t%s\t%s\t1003\tunknown\t/CN=localhost\n' "$exp" "$rev" >>index.txt
echo 'unique_subject = no' >index.txt.attr

req() {   # cert out [digest option, before -cert as openssl wants it]
	c=$1; o=$2; shift 2
	run openssl ocsp -issuer ca.crt "$@" -cert $c.crt -no_nonce -reqout $o.req
}
answer() {   # req out signer-cert signer-key [options]
	q=$1; o=$2; sc=$3; sk=$4; shift 4
	run openssl ocsp -index index.txt -CA ca.crt -rsigner $sc -rkey $sk \
		-reqin $q.req -respout $o.der "$@"
}
req leaf leaf
req leaf leaf256 -sha256
req other other
req revoked revoked
req stray stray
answer leaf good ca.crt ca.key -ndays 2
answer leaf256 good256 ca.crt ca.key -ndays 2
answer leaf bykey ca.crt ca.key -resp_key_id
answer leaf deleg resp.crt resp.key -ndays 2
answer leaf noeku noeku.crt noeku.key -ndays 2
answer leaf stranger stranger.crt stranger.key -ndays 2
answer other other ca.crt ca.key -ndays 2
answer revoked revoked ca.crt ca.key -ndays 2
answer stray unknown ca.crt ca.key -ndays 2
answer leaf nocert resp.crt resp.key -ndays 2 -resp_no_certs
answer leaf sha1 ca.crt ca.key -ndays 2 -rmd sha1
answer leaf pss ca.crt ca.key -ndays 2 -rsigopt rsa_padding_mode:pss
for md in sha384 sha512; do
	answer leaf $md ca.crt ca.key -ndays 2 -rmd $md
	answer leaf deleg${md#sha} resp.crt resp.key -ndays 2 -rmd $md
done
echo done >&3
