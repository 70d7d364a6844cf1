#!/bin/sh
# mk.sh N : config with listeners a, and b1..bN extra
N=$1
cat > /tmp/r4/p.ini <<EOT
workers = 2
pid_file = /tmp/r4/p.pid
ports_file = /tmp/r4/ports
log = /tmp/r4/p.log
[tls]
cert = /tmp/r4/cert.pem
key = /tmp/r4/key.pem
[a]
listen = 127.0.0.1:0
mode = tls
protocol = tcp
backend = 127.0.0.1:9
EOT
i=1
while [ $i -le $N ]; do
cat >> /tmp/r4/p.ini <<EOT
[b$i]
listen = 127.0.0.1:0
mode = tls
protocol = tcp
backend = 127.0.0.1:9
EOT
i=$((i+1))
done
