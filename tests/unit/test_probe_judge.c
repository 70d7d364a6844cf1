/* The findings of `portier probe` from results made here: each mismatch
 * of model and port, STARTTLS not required, old versions, certificate
 * dates, name, chain and key, and what must not be said. */
#include "check.h"
#include "probe.h"
#include "proto.h"

#define DAY 86400

static struct probe_result r;

static void fresh(int port, enum probe_model model)
{
	memset(&r, 0, sizeof(r));
	r.port = r.judged_port = port;
	r.model = model;
	r.starttls_offered = r.starttls_required = -1;
	for (int v = 0; v < PROBE_NVERSIONS; v++)
		r.versions[v] = -1;
	r.now = 1700000000;
}

/* The port's own expectation, as probe.c works it out. */
static void judge(void)
{
	const struct proto_port *pp;
	const struct proto *pr = proto_of_port(r.judged_port, &pp);
	enum probe_expect e = pp == NULL ? PROBE_EXPECT_UNKNOWN : pp->implicit ?
	                      PROBE_EXPECT_IMPLICIT : pr->id == CFG_PROTO_HTTP ?
	                      PROBE_EXPECT_PLAIN : PROBE_EXPECT_STARTTLS;

	probe_judge(&r, pr, pp, e);
}

static int has(const char *id, const char *text)
{
	for (size_t i = 0; i < r.nfindings; i++)
		if (strcmp(r.findings[i].id, id) == 0 &&
		    (text == NULL || strstr(r.findings[i].text, text) != NULL))
			return 1;
	return 0;
}

static void good_cert(void)
{
	memset(&r.cert, 0, sizeof(r.cert));
	r.have_cert = 1;
	r.name_matches = 1;
	r.name = "mail.example.org";
	strcpy(r.cert.subject_cn, "mail.example.org");
	r.cert.verified = 1;
	r.cert.not_before = r.now - DAY;
	r.cert.not_after = r.now + 90 * DAY;
	strcpy(r.cert.key_type, "EC");
	r.cert.key_bits = 256;
}

static void models(void)
{
	fresh(993, PROBE_STARTTLS);
	r.starttls_offered = 1;
	r.starttls_required = 1;
	judge();
	CHECK(r.nfindings == 1);
	CHECK(has("starttls-on-implicit-port", "993 speaks plaintext IMAP with STARTTLS: clients "
	          "configured for SSL/TLS on 993 will fail; either enable implicit TLS on 993 or "
	          "set clients to STARTTLS on 143"));

	fresh(465, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("plaintext-on-implicit-port", "465 expects implicit TLS; this server answered a "
	          "plaintext SMTP greeting"));
	CHECK(has("plaintext-on-implicit-port", "and it offers no STARTTLS either"));
	CHECK(r.nfindings == 1);   /* not also no-tls */

	fresh(587, PROBE_IMPLICIT_TLS);
	judge();
	CHECK(has("implicit-tls-on-starttls-port", "set clients to SSL/TLS on 465"));

	fresh(80, PROBE_IMPLICIT_TLS);
	judge();
	CHECK(has("implicit-tls-on-plain-port", NULL));

	fresh(80, PROBE_PLAIN);
	strcpy(r.http_status, "HTTP/1.1 301 Moved");
	strcpy(r.http_location, "https://www.example.org/");
	judge();
	CHECK(r.nfindings == 0);
	strcpy(r.http_location, "http://www.example.org/");
	judge();
	CHECK(has("http-no-redirect", NULL));

	fresh(143, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("no-tls", "143 offers no STARTTLS"));
	fresh(25, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("no-tls", "mail from other servers arrives in clear"));
	fresh(389, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("no-tls", "389 offers no StartTLS"));

	/* STARTTLS optional: said; required, or not known: not said. */
	fresh(587, PROBE_STARTTLS);
	r.starttls_offered = 1;
	r.starttls_required = 0;
	judge();
	CHECK(has("starttls-not-required", "AUTH is offered before STARTTLS"));
	fresh(587, PROBE_STARTTLS);
	r.starttls_offered = 1;
	judge();
	CHECK(r.nfindings == 0);

	/* FTP says AUTH TLS. */
	fresh(990, PROBE_STARTTLS);
	r.starttls_offered = 1;
	judge();
	CHECK(has("starttls-on-implicit-port", "990 speaks plaintext FTP with AUTH TLS: clients "
	          "configured for SSL/TLS on 990 will fail; either enable implicit TLS on 990 or "
	          "set clients to AUTH TLS on 21"));
	fresh(21, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("no-tls", "21 offers no AUTH TLS: passwords and files"));

	fresh(993, PROBE_OTHER);
	r.protocol = "ssh";
	judge();
	CHECK(has("unexpected-service", "993 is IMAPS, but ssh answered"));
	/* A client-first port's protocol is the port's guess, not a banner. */
	fresh(443, PROBE_OTHER);
	r.protocol = "http";
	r.protocol_from = "port";
	judge();
	CHECK(has("unexpected-service", "443 is HTTPS, but it answered neither in TLS nor in "
	          "plaintext http"));
	/* An unknown port: whatever answered is no finding. */
	fresh(2222, PROBE_OTHER);
	r.protocol = "ssh";
	judge();
	CHECK(r.nfindings == 0);
}

static void tls(void)
{
	fresh(443, PROBE_IMPLICIT_TLS);
	r.tls = 1;
	r.versions[0] = 1;
	r.versions[1] = 0;
	good_cert();
	judge();
	CHECK(r.nfindings == 1 && has("tls10-accepted", "TLS 1.0 accepted: disable it"));

	/* A failed STARTTLS upgrade. */
	fresh(143, PROBE_STARTTLS);
	r.starttls_offered = 1;
	r.starttls_required = 1;
	strcpy(r.tls_error, "server sent alert: handshake failure");
	judge();
	CHECK(has("tls-failed", "TLS did not work: server sent alert: handshake failure"));
}

static void certificates(void)
{
	fresh(443, PROBE_IMPLICIT_TLS);
	r.tls = 1;
	good_cert();
	r.cert.not_after = r.now + 5 * DAY - 60;   /* rounds to 5 */
	judge();
	CHECK(probe_days_left(&r) == 5);
	CHECK(r.nfindings == 1 &&
	      has("cert-expiring", "certificate for mail.example.org expires in 5 days"));

	good_cert();
	r.nfindings = 0;
	r.cert.not_after = r.now + 30 * DAY;
	judge();
	CHECK(r.nfindings == 0);

	/* Expired: one finding, although verification failed on the date. */
	good_cert();
	r.nfindings = 0;
	r.cert.not_after = r.now - 3 * DAY;
	r.cert.verified = 0;
	r.cert.verify_dates_only = 1;
	strcpy(r.cert.verify_error, "certificate has expired");
	judge();
	CHECK(r.nfindings == 1 && has("cert-expired", "expired 3 days ago"));

	/* Under a day, in hours: it said "expired 0 days ago". */
	r.nfindings = 0;
	r.cert.not_after = r.now - 2 * 3600 - 60;
	judge();
	CHECK(r.nfindings == 1 && has("cert-expired", "expired 2 hours ago: renew it"));
	r.nfindings = 0;
	r.cert.not_after = r.now - 60;
	judge();
	CHECK(r.nfindings == 1 && has("cert-expired", "expired less than an hour ago"));
	good_cert();
	r.nfindings = 0;
	r.cert.not_after = r.now + 3600 + 60;
	judge();
	CHECK(r.nfindings == 1 && has("cert-expiring", "expires in 1 hour: renew it"));

	good_cert();
	r.nfindings = 0;
	r.cert.not_before = r.now + DAY;
	r.cert.verified = 0;
	r.cert.verify_dates_only = 1;
	judge();
	CHECK(r.nfindings == 1 && has("cert-not-yet-valid", NULL));

	good_cert();
	r.nfindings = 0;
	r.name_matches = 0;
	r.name = "www.example.org";
	r.cert.verified = 0;
	strcpy(r.cert.verify_error, "unable to get local issuer certificate");
	strcpy(r.cert.key_type, "RSA");
	r.cert.key_bits = 1024;
	judge();
	CHECK(r.nfindings == 3);
	CHECK(has("cert-name-mismatch", "certificate for mail.example.org does not name "
	          "www.example.org"));
	CHECK(has("cert-untrusted", "against the system store: unable to get local issuer"));
	CHECK(has("weak-key", "RSA 1024 bits"));

	/* No CN: the first name stands for it. */
	good_cert();
	r.nfindings = 0;
	r.cert.subject_cn[0] = '\0';
	strcpy(r.cert.sans[0], "alt.example.org");
	r.cert.nsans = 1;
	r.cert.not_after = r.now + 2 * DAY;
	judge();
	CHECK(has("cert-expiring", "certificate for alt.example.org expires in 2 days"));
}

/* A certificate's names are the probed server's choice: in a finding they
 * are escaped as on the report's certificate line, so no byte of them (a
 * UTF-8 CSI, U+009B, in a CN; a quote) reaches the terminal raw. */
static void hostile_names(void)
{
	static struct tlsctx_cert_info want;
	const char *paths[1] = { "/etc/ec.pem" };
	int raw = 0;

	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.subject_cn, "evil\xc2\x9b" "31m\"x");
	r.name_matches = 0;
	r.cert.not_after = r.now + 2 * DAY;
	judge();
	CHECK(has("cert-name-mismatch", "certificate for evil\\xc2\\x9b31m\\\"x does not name"));
	CHECK(has("cert-expiring", "certificate for evil\\xc2\\x9b31m\\\"x expires"));
	memset(&want, 0, sizeof(want));
	strcpy(want.subject_cn, "mail.example.org");
	strcpy(want.serial, "1000");
	strcpy(r.cert.sans[0], "a.example.org\xc2\x9b");
	r.cert.nsans = r.cert.nsans_total = 1;
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "serves a certificate for a.example.org\\xc2\\x9b, but"));
	for (size_t i = 0; i < r.nfindings; i++)
		for (const unsigned char *p = (const unsigned char *)r.findings[i].text; *p; p++)
			raw += *p >= 0x7f || *p < 0x20;
	CHECK(raw == 0);
}

/* --config: a listener's mode is one more expectation, on any port; and
 * an expectation without a port entry is none (no NULL entry is read). */
static void config(void)
{
	fresh(40000, PROBE_IMPLICIT_TLS);
	r.listener = "imaps";
	r.config_mode = "starttls";
	r.config_model = PROBE_STARTTLS;
	judge();
	CHECK(r.nfindings == 1 && has("config-mismatch", "listener [imaps] has mode = "
	      "starttls, but port 40000 answers as implicit-tls"));
	fresh(40000, PROBE_STARTTLS);
	r.listener = "imaps";
	r.config_mode = "starttls";
	r.config_model = PROBE_STARTTLS;
	r.starttls_offered = 1;
	judge();
	CHECK(r.nfindings == 0);
	fresh(40000, PROBE_PLAIN);
	probe_judge(&r, proto_get(CFG_PROTO_IMAP), NULL, PROBE_EXPECT_IMPLICIT);
	CHECK(r.nfindings == 0);
}

/* A filtered port: its likely cause and the command that opens a
 * config's ports (the config probed, else the default one); nothing
 * else, not even the config's expectation. */
static void filtered(void)
{
	fresh(465, PROBE_FILTERED);
	judge();
	CHECK(r.nfindings == 1);
	CHECK(has("filtered", "port 465 did not answer the connection: most likely a firewall "
	          "drops it (the host's own, or one on the way), else the host is down; on a "
	          "portier host `portier firewall -c /etc/portier/portier.ini` prints the "
	          "commands that open its config's ports (--format nft, ufw, firewalld or "
	          "iptables)"));
	fresh(465, PROBE_FILTERED);
	r.listener = "smtps";
	r.config = "/srv/p.ini";
	r.config_mode = "tls";
	r.config_model = PROBE_IMPLICIT_TLS;
	judge();
	CHECK(r.nfindings == 1);
	CHECK(has("filtered", "`portier firewall -c /srv/p.ini` prints"));
}

/* A name with addresses that refuse or drop the connection while
 * another answered: one finding each; none for the untried. */
static void addresses(void)
{
	fresh(443, PROBE_IMPLICIT_TLS);
	strcpy(r.host, "www.example.org");
	strcpy(r.address, "192.0.2.1");
	r.naddresses = 4;
	r.naddresses_total = 5;
	strcpy(r.addresses[0].address, "2001:db8::1");
	r.addresses[0].result = "refused";
	strcpy(r.addresses[1].address, "2001:db8::2");
	r.addresses[1].result = "timeout";
	strcpy(r.addresses[2].address, "192.0.2.1");
	r.addresses[2].result = "probed";
	strcpy(r.addresses[3].address, "192.0.2.2");
	r.addresses[3].result = "not tried";
	judge();
	CHECK(r.nfindings == 2);
	CHECK(has("address-unreachable", "www.example.org resolves to 5 addresses, and "
	          "2001:db8::1 refuses the connection (192.0.2.1 answered): clients that try it "
	          "first fail unless they try the next address"));
	CHECK(has("address-unreachable", "and 2001:db8::2 does not answer (192.0.2.1 answered): "
	          "clients that try it first wait for their own timeout before the next address, "
	          "or fail"));
}

/* --config: the certificate served against the config's cert files. */
static void config_cert(void)
{
	static struct tlsctx_cert_info want[2];
	const char *paths[2] = { "/etc/ec.pem", "/etc/rsa.pem" };

	memset(want, 0, sizeof(want));
	for (int i = 0; i < 2; i++) {
		strcpy(want[i].subject_cn, "mail.example.org");
		strcpy(want[i].sans[0], "mail.example.org");
		strcpy(want[i].sans[1], "imap.example.org");
		want[i].nsans = want[i].nsans_total = 2;
		strcpy(want[i].issuer, "CN=test CA");
	}
	strcpy(want[0].serial, "1000");
	strcpy(want[1].serial, "1001");

	/* The second file's: the same, nothing to say. */
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.sans[0], "IMAP.example.org");   /* order and case aside */
	strcpy(r.cert.sans[1], "mail.example.org");
	r.cert.nsans = r.cert.nsans_total = 2;
	strcpy(r.cert.issuer, "CN=test CA");
	strcpy(r.cert.serial, "1001");
	probe_judge_config_cert(&r, want, paths, 2);
	CHECK(r.cert_config == 1 && r.nfindings == 0);
	CHECK_STR(r.cert_config_files, "/etc/ec.pem or /etc/rsa.pem");

	/* Same names, another serial: a file not loaded yet. */
	strcpy(r.cert.serial, "0FFF");
	probe_judge_config_cert(&r, want, paths, 2);
	CHECK(r.cert_config == 0 && r.nfindings == 1);
	CHECK(has("cert-not-config", "port 993 serves a certificate for the same names "
	          "(IMAP.example.org, mail.example.org) as /etc/ec.pem, but not that file's "
	          "(serial 0FFF, not 1000): portier has not loaded the file since it changed "
	          "(reload it), or another server holds the port"));

	/* The same serial from another issuer is another certificate. */
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	r.cert = want[0];
	strcpy(r.cert.issuer, "CN=other CA");
	probe_judge_config_cert(&r, want, paths, 1);
	CHECK(r.cert_config == 0 && has("cert-not-config", "the same names"));

	/* Other names (one more is other too). */
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	r.cert = want[0];
	strcpy(r.cert.serial, "2000");
	strcpy(r.cert.sans[2], "other.example.org");
	r.cert.nsans = r.cert.nsans_total = 3;
	probe_judge_config_cert(&r, want, paths, 1);
	CHECK(r.cert_config == 0);
	CHECK(has("cert-not-config", "port 993 serves a certificate for mail.example.org, "
	          "imap.example.org, other.example.org, but the config's /etc/ec.pem is for "
	          "mail.example.org, imap.example.org: another server holds the port, or "
	          "portier runs another config"));

	/* Nothing to compare: no certificate, or no readable file. */
	fresh(993, PROBE_IMPLICIT_TLS);
	probe_judge_config_cert(&r, want, paths, 2);
	CHECK(r.cert_config == -1 && r.nfindings == 0);
	good_cert();
	probe_judge_config_cert(&r, want, paths, 0);
	CHECK(r.cert_config == -1 && r.nfindings == 0);
}

/* Each condition of a finding on its own, and each date and size at its
 * bound. */
static void edges(void)
{
	static struct tlsctx_cert_info want;
	const char *paths[1] = { "/etc/cn.pem" };

	/* A day to the second is "1 day"; an end at this very second is
	 * past; a start at it is not in the future. RSA 2048 is no weak
	 * key, 2047 is. */
	fresh(443, PROBE_IMPLICIT_TLS);
	r.tls = 1;
	good_cert();
	r.cert.not_after = r.now + DAY;
	judge();
	CHECK(r.nfindings == 1 && has("cert-expiring", "expires in 1 day: renew it"));
	fresh(443, PROBE_IMPLICIT_TLS);
	good_cert();
	r.cert.not_after = r.now;
	judge();
	CHECK(r.nfindings == 1 && has("cert-expired", "expired less than an hour ago"));
	fresh(443, PROBE_IMPLICIT_TLS);
	good_cert();
	r.cert.not_before = r.now;
	strcpy(r.cert.key_type, "RSA");
	r.cert.key_bits = 2048;
	judge();
	CHECK(r.nfindings == 0);
	r.cert.key_bits = 2047;
	judge();
	CHECK(r.nfindings == 1 && has("weak-key", "RSA 2047 bits"));

	/* HTTPS answered in plaintext: no "either" (HTTP has no upgrade). */
	fresh(443, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(r.nfindings == 1 && has("plaintext-on-implicit-port", "in plaintext") &&
	      !has("plaintext-on-implicit-port", "either"));

	/* SMTP without STARTTLS on 587 is about passwords, not relayed mail;
	 * a protocol given on a port of its own has no implicit port to
	 * suggest. */
	fresh(587, PROBE_PLAIN);
	r.starttls_offered = 0;
	judge();
	CHECK(has("no-tls", "587 offers no STARTTLS: passwords and messages cross the "
	          "network in clear; enable STARTTLS here, or use implicit TLS"));
	fresh(2143, PROBE_PLAIN);
	r.starttls_offered = 0;
	probe_judge(&r, proto_get(CFG_PROTO_IMAP), NULL, PROBE_EXPECT_STARTTLS);
	CHECK(r.nfindings == 1 && has("no-tls", "2143 offers no STARTTLS: passwords and "
	      "messages cross the network in clear; enable STARTTLS") &&
	      !has("no-tls", "implicit TLS"));

	/* STARTTLS optional, in each protocol's words. */
	{
		static const struct {
			int port;
			const char *words;
		} optional[] = {
			{143, "(no LOGINDISABLED before STARTTLS)"},
			{110, "(USER or SASL offered before STLS)"},
			{389, "(the directory answers searches before StartTLS)"},
		};
		for (size_t i = 0; i < 3; i++) {
			fresh(optional[i].port, PROBE_STARTTLS);
			r.starttls_offered = 1;
			r.starttls_required = 0;
			judge();
			CHECK(has("starttls-not-required", optional[i].words));
		}
	}

	/* A TLS error is a finding when TLS was tried: implicit TLS, a
	 * STARTTLS, or an upgrade offered; not on a plain port offering
	 * none. The name refused: an address gets no SNI, a name did. */
	fresh(993, PROBE_IMPLICIT_TLS);
	strcpy(r.tls_error, "alert");
	judge();
	CHECK(has("tls-failed", "TLS did not work: alert"));
	fresh(143, PROBE_PLAIN);
	r.starttls_offered = 1;
	strcpy(r.tls_error, "alert");
	judge();
	CHECK(has("tls-failed", "TLS did not work: alert"));
	fresh(143, PROBE_PLAIN);
	r.starttls_offered = 0;
	strcpy(r.tls_error, "alert");
	judge();
	CHECK(!has("tls-failed", NULL));
	fresh(993, PROBE_IMPLICIT_TLS);
	strcpy(r.tls_error, "alert");
	r.tls_name_refused = 1;
	{
		static const char *const refused[][2] = {
			{"mail.example.org", "no certificate for the name sent (SNI 'mail.example.org')"},
			{"192.0.2.1", "no SNI is sent for the address 192.0.2.1"},
			{"2001:db8::1", "no SNI is sent for the address 2001:db8::1"},
		};
		for (size_t i = 0; i < 3; i++) {
			r.nfindings = 0;
			r.name = refused[i][0];
			judge();
			CHECK(has("tls-failed", refused[i][1]));
		}
	}

	/* --config: what the mismatch likely means depends on what answered. */
	{
		static const struct {
			enum probe_model model;
			const char *means;
		} mismatch[] = {
			{PROBE_OTHER, "another server may hold the port"},
			{PROBE_ERROR, "another server may hold the port"},
			{PROBE_PLAIN, "clients set up for the config will fail"},
		};
		for (size_t i = 0; i < 3; i++) {
			fresh(40000, mismatch[i].model);
			r.listener = "imaps";
			r.config_mode = "tls";
			r.config_model = PROBE_IMPLICIT_TLS;
			judge();
			CHECK(has("config-mismatch", mismatch[i].means));
		}
	}

	/* --config against a certificate named by its CN alone: the same CN
	 * is the same names, another CN or any subjectAltName is not. */
	memset(&want, 0, sizeof(want));
	strcpy(want.subject_cn, "mail.example.org");
	strcpy(want.serial, "1000");
	strcpy(want.issuer, "CN=test CA");
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.serial, "2000");
	strcpy(r.cert.subject_cn, "MAIL.example.org");
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(r.cert_config == 0 && has("cert-not-config", "the same names (MAIL.example.org)"));
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.serial, "2000");
	strcpy(r.cert.subject_cn, "imap.example.org");
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "serves a certificate for imap.example.org, but the "
	          "config's /etc/cn.pem is for mail.example.org:"));
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.serial, "2000");
	strcpy(r.cert.sans[0], "mail.example.org");
	r.cert.nsans = r.cert.nsans_total = 1;
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "but the config's /etc/cn.pem is for mail.example.org:"));
	/* No name at all. */
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.serial, "2000");
	r.cert.subject_cn[0] = '\0';
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "serves a certificate for (no name), but"));
	/* As many names, one of them another: not the same names, either way
	 * round. */
	strcpy(want.sans[0], "mail.example.org");
	strcpy(want.sans[1], "imap.example.org");
	want.nsans = want.nsans_total = 2;
	fresh(993, PROBE_IMPLICIT_TLS);
	good_cert();
	strcpy(r.cert.serial, "2000");
	strcpy(r.cert.sans[0], "mail.example.org");
	strcpy(r.cert.sans[1], "pop.example.org");
	r.cert.nsans = r.cert.nsans_total = 2;
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "serves a certificate for mail.example.org, "
	          "pop.example.org, but"));
	strcpy(r.cert.sans[0], "pop.example.org");
	strcpy(r.cert.sans[1], "imap.example.org");
	r.nfindings = 0;
	probe_judge_config_cert(&r, &want, paths, 1);
	CHECK(has("cert-not-config", "serves a certificate for pop.example.org, "
	          "imap.example.org, but"));
}

/* Findings stop at the cap, and judging twice adds, never overflows. */
static void cap(void)
{
	fresh(443, PROBE_PLAIN);
	r.starttls_offered = 0;
	for (int i = 0; i < 2 * PROBE_MAX_FINDINGS; i++)
		judge();
	CHECK(r.nfindings == PROBE_MAX_FINDINGS);
}

int main(void)
{
	models();
	tls();
	certificates();
	config();
	filtered();
	config_cert();
	addresses();
	cap();
	hostile_names();
	edges();
	return CHECK_DONE();
}
