package classify_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"github.com/switchyard/switchyard/classify"
	"golang.org/x/text/unicode/norm"
)

type rc struct{ label, text string }

func b64(s string) string  { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b64u(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const (
	E  = classify.Email
	P  = classify.Phone
	C  = classify.CreditCard
	I  = classify.IBAN
	S  = classify.USSSN
	IP = classify.IPAddress
	K  = classify.APIKey
	PK = classify.PrivateKey
	J  = classify.JWT
)

const jwt1 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
const pemBody = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8qV1Yr3XkZ6cFQ1aEwV0aJ5G2\nkq8Yb2YjLx0xQ7Yb8n0C4hV1oP9cQ2bT6W3eZy5kR0fD4sL8mN2aX7pQ9vT3cB1\n"

var sensitive = []rc{
	// ---------------- EMAIL ----------------
	{E, "Hi, please update my account email to ⟦sarah.connor1984@gmail.com⟧ thanks"},
	{E, "Kontakt: ⟦m.mueller@firma-beispiel.de⟧, Tel. siehe unten"},
	{E, "Vous pouvez me joindre à ⟦claire.dubois@orange.fr⟧."},
	{E, "Mi correo es ⟦javier.gomez.r@hotmail.es⟧ por si acaso"},
	{E, "Scrivimi a ⟦giulia.rossi@libero.it⟧ grazie mille"},
	{E, "O meu email é ⟦joao.silva@sapo.pt⟧, obrigado"},
	{E, "Mijn e-mailadres is ⟦pieter.devries@ziggo.nl⟧"},
	{E, "you can reach me at ⟦jane dot doe at gmail dot com⟧"},
	{E, "my email: ⟦jdoe [at] protonmail [dot] com⟧"},
	{E, "send the invoice to ⟦billing(at)acme-corp.com⟧ please"},
	{E, "contact ⟦john.smith AT outlook DOT com⟧ for access"},
	{E, "mail ⟦k.tanaka (at) example (dot) co (dot) jp⟧"},
	{E, "Meine Mail: ⟦anna.schmidt (at) web.de⟧"},
	{E, "Bitte an ⟦info (at) zahnarzt-weber (punkt) de⟧ schreiben"},
	{E, "écrivez-moi : ⟦marie.dupont arobase orange point fr⟧"},
	{E, "mi correo: ⟦luis.fernandez arroba gmail punto com⟧"},
	{E, "la mia mail è ⟦marco.bianchi chiocciola gmail punto com⟧"},
	{E, "email is ⟦sarah_92 @ yahoo.com⟧ if that helps"},
	{E, "Email: ⟦ｍａｒｉａ＠ｅｘａｍｐｌｅｍａｉｌ．ｃｏｍ⟧"},
	{E, "id,name,email,phone\n1042,Lena Fischer,⟦lena.fischer@t-online.de⟧,+49 171 2345678"},
	{E, `{"customer": {"name": "Tom Baker", "email": "⟦tom.baker+newsletter@icloud.com⟧"}}`},
	{E, "2024-03-11T10:22:01Z INFO login ok user=⟦d.okafor@company.io⟧ session=abc"},
	{E, "From: Robert Lee <⟦robert.lee@lee-law.com⟧>\nSubject: Re: contract"},
	{E, "<a href=\"mailto:⟦support.team@bigbank.co.uk⟧\">email us</a>"},
	{E, "My work email is ⟦h.nguyen@stanford.edu⟧."},
	{E, "email me - ⟦kevin (dot) obrien (at) gmail (dot) com⟧"},
	{E, "Proszę pisać na ⟦a.kowalski@wp.pl⟧"},
	{E, "just write to ⟦joe at joeshardware dot com⟧ and he'll sort it"},
	{E, "GET /api/users?email=⟦alice.w%40example.org⟧&page=2 HTTP/1.1"},
	{E, `payload was {\"email\": \"⟦bob\u0040corp-mail.com⟧\"}`},
	{E, "cc: ⟦o.hernandez@empresa.mx⟧; ⟦r.castillo@empresa.mx⟧"},
	{E, "Email at ⟦marcus at gmail.com⟧ for the files"},
	{E, "E-MAIL ADDRESS: ⟦MARK.JOHNSON@YAHOO.COM⟧"},
	{E, "Sales: ⟦lisa.m at hotmail.co.uk⟧"},
	{E, "—\nJohn Smith | Head of Sales\n⟦jsmith@northwind-traders.com⟧ | +1 (212) 555-0147"},
	{E, "my email address is ⟦ahmed.khan1990 at gmail dot com⟧"},
	{E, "e-mail: ⟦j.vandenberg＠kpn.nl⟧"},
	{E, "Por favor envíe a ⟦ventas@distribuidora-sur.com.ar⟧"},
	{E, "reply-to: ⟦noreply+user_8812@mail.shop-online.de⟧"},
	{E, "contact: ⟦olivia.brown{at}gmail{dot}com⟧"},
	{E, "email ⟦max.mustermann at gmx dot de⟧"},
	{E, "mail ⟦sophie [at] laposte [.] net⟧"},
	{E, "ping me on ⟦t.wright@gmail⟧.com"}, // typo-split variant, arguable
	// ---------------- PHONE ----------------
	{P, "Call me at ⟦(415) 555-2671⟧ after 5pm"},
	{P, "my cell is ⟦917-555-0143⟧"},
	{P, "⟦212.736.5000⟧ is the front desk number"},
	{P, "Phone: ⟦+1 646 555 3890⟧"},
	{P, "text me on ⟦6175550198⟧ when you land"},
	{P, "Reach Dana at ⟦(312) 555-0199⟧ ext. 204"},
	{P, "Tel ⟦+1 (303) 555-0182⟧"},
	{P, "John Doe, 42 Elm St, Springfield, ⟦555-867-5309⟧"},
	{P, "ring me on ⟦07700 900461⟧ tomorrow"},
	{P, "Office: ⟦020 7946 0018⟧"},
	{P, "⟦+44 (0)20 7946 0958⟧"},
	{P, "WhatsApp ⟦+44 7911 123456⟧"},
	{P, "mobile ⟦07911123456⟧"},
	{P, "Telefon: ⟦030 12345678⟧"},
	{P, "Handy: ⟦0151 23456789⟧"},
	{P, "Tel. ⟦+49 (0)89 1234567⟧"},
	{P, "Ich bin erreichbar unter ⟦0171/1234567⟧"},
	{P, "Rückruf bitte an ⟦+49 30 901820⟧"},
	{P, "Tél : ⟦01 74 89 42 77⟧"},
	{P, "Mon portable : ⟦06 12 34 56 78⟧"},
	{P, "⟦+33 1 74 89 42 77⟧"},
	{P, "Appelez le ⟦+33 (0)6 12 34 56 78⟧"},
	{P, "tel ⟦06.12.34.56.78⟧"},
	{P, "rappelez-moi au ⟦0612345678⟧ svp"},
	{P, "Mi móvil es ⟦612 345 678⟧"},
	{P, "Oficina ⟦+34 912 345 678⟧"},
	{P, "llámame al ⟦91 123 45 67⟧"},
	{P, "Il mio cellulare: ⟦333 123 4567⟧"},
	{P, "Ufficio ⟦+39 06 6988 1234⟧"},
	{P, "tel. ⟦02 1234 5678⟧"},
	{P, "Bel me op ⟦06-12345678⟧"},
	{P, "⟦+31 20 123 4567⟧"},
	{P, "Telefoon: ⟦020-1234567⟧"},
	{P, "⟦+32 2 555 12 12⟧"},
	{P, "GSM ⟦0470 12 34 56⟧"},
	{P, "Tel ⟦044 668 18 00⟧"},
	{P, "Natel ⟦+41 79 123 45 67⟧"},
	{P, "Handy ⟦0664 1234567⟧"},
	{P, "call me on ⟦087 123 4567⟧"},
	{P, "⟦+353 1 234 5678⟧"},
	{P, "O meu telemóvel é ⟦912 345 678⟧"},
	{P, "⟦+351 21 123 4567⟧"},
	{P, "tel. ⟦+48 601 234 567⟧"},
	{P, "zadzwoń ⟦601 234 567⟧"},
	{P, "ring ⟦070-123 45 67⟧"},
	{P, "⟦+46 8 123 456 78⟧"},
	{P, "Mobile no. ⟦+91 98765 43210⟧"},
	{P, "mob: ⟦098765 43210⟧"},
	{P, "My number is ⟦9876543210⟧"},
	{P, "nomor saya ⟦08124181102⟧"},
	{P, "hubungi ⟦+62 812-4181-102⟧"},
	{P, "Celular: ⟦(11) 91234-5678⟧"},
	{P, "⟦+55 11 91234-5678⟧"},
	{P, "Tel. ⟦+52 55 1234 5678⟧"},
	{P, "mi cel ⟦55 1234 5678⟧"},
	{P, "mobile ⟦0412 345 678⟧"},
	{P, "⟦(02) 9374 4000⟧"},
	{P, "⟦+61 2 9374 4000⟧"},
	{P, "電話: ⟦03-1234-5678⟧"},
	{P, "携帯 ⟦090-1234-5678⟧"},
	{P, "⟦+81 3-1234-5678⟧"},
	{P, "微信/电话 ⟦+86 138 0013 8000⟧"},
	{P, "⟦+27 82 123 4567⟧"},
	{P, "call ⟦+234 803 123 4567⟧"},
	{P, "⟦0049 171 2345678⟧"},
	{P, "⟦0033 6 12 34 56 78⟧"},
	{P, "| Name | Phone |\n|---|---|\n| Ana | ⟦+34 600 123 456⟧ |\n| Ben | ⟦07700 900123⟧ |"},
	{P, "⟦+1 212-555-0123⟧ x405"},
	{P, "電話：⟦０９０-１２３４-５６７８⟧"},
	{P, "Name: Karl Weber\nTelefon ⟦089 / 12 34 56 78⟧\nAdresse: Hauptstr. 5"},
	{P, "please call back ⟦+1-415-555-2671⟧"},
	{P, "Contact number ⟦+1 415 555 2671⟧ (mobile)"},
	{P, "ligue para ⟦(21) 98765-4321⟧"},
	{P, "customer phone ⟦+44 20 7946 0958⟧, prefers mornings"},
	{P, "name,phone\nMaria,⟦+33612345678⟧\nLuc,⟦+33174894277⟧"},
	{P, "Sie erreichen mich mobil unter ⟦0176 98765432⟧."},
	{P, "Numero: ⟦347 555 1234⟧"},
	{P, "his number ⟦07700900123⟧"},
	{P, "Fax: ⟦+49 221 9876543⟧"},
	{P, "Tel.: ⟦+43 1 5350505⟧"},
	{P, "Kunde hat angerufen, Rückrufnummer ⟦0211 4567890⟧"},
	{P, "spoke with the client on ⟦+1 (646) 555-3890⟧ today"},
	// ---------------- SSN ----------------
	{S, "SSN: ⟦536-22-8412⟧"},
	{S, "My social is ⟦521 44 8790⟧"},
	{S, "SS# ⟦412-68-3301⟧"},
	{S, "ssn ⟦287654321⟧"},
	{S, "Social Security Number: ⟦078051120⟧"},
	{S, "tax ID ⟦536 90 4417⟧"},
	{S, "Please verify: SSN ⟦219.09.9999⟧"},
	{S, "Name: Maria Lopez\nDOB: 04/12/1987\nSSN: ⟦601-23-4567⟧"},
	{S, "my social security # is ⟦449-31-2276⟧"},
	{S, "ITIN ⟦912-78-1234⟧"},
	{S, "S.S.N. ⟦345-67-8912⟧"},
	{S, "social sec no ⟦231 76 5489⟧"},
	{S, "W-2 shows SSN ⟦455-12-9087⟧ for the employee"},
	{S, "emp_id,name,ssn\n4471,John Park,⟦512-66-0923⟧"},
	{S, "Soc Sec #: ⟦303 44 5821⟧"},
	{S, "Applicant ⟦372-19-4410⟧ approved"},
	{S, "SSN-⟦372194410⟧"},
	{S, "ssn:⟦372194410⟧"},
	{S, "his social is ⟦372-19-4410⟧ and DOB 3/4/81"},
	{S, "taxpayer identification number ⟦372-19-4410⟧"},
	{S, "Numéro de sécurité sociale américain (SSN) : ⟦372 19 4410⟧"},
	{S, "número de seguro social: ⟦372-19-4410⟧"},
	{S, "SSN：⟦１２３－４５－６７８９⟧"},
	{S, "SSN ⟦372–19–4410⟧"},
	{S, "Social: ⟦372194410⟧"},
	{S, "SS no. ⟦372194410⟧"},
	{S, "Full name John A. Doe, social ⟦372 19 4410⟧, born 1979"},
	{S, "Here is my social security number ⟦455 12 9087⟧, can you fill the W-9?"},
	{S, "SSN (no dashes): ⟦455129087⟧"},
	{S, "first_name,last_name,dob,social\nAmy,Chen,1990-02-11,⟦611-09-3345⟧"},
	{S, "Patient SSN ⟦611093345⟧ MRN 88812"},
	{S, "social security no. ⟦611 09 3345⟧"},
	{S, "My SSN is ⟦611-09-3345⟧. My wife's is ⟦US_SSN|611-09-3346⟧."},
	{S, "Sozialversicherungsnummer (USA): ⟦611093345⟧"},
	{S, "the last applicant's social was ⟦248 55 1093⟧ I think"},
	{S, "tin: ⟦248551093⟧"},
	{S, "EIN / SSN: ⟦248-55-1093⟧"},
	// ---------------- CARDS ----------------
	{C, "Card: ⟦4111 1111 1111 1111⟧ exp 12/27 cvv 123"},
	{C, "⟦5555-5555-5555-4444⟧"},
	{C, "amex ⟦3782 822463 10005⟧"},
	{C, "my card number is ⟦378282246310005⟧"},
	{C, "Discover ⟦6011 1111 1111 1117⟧"},
	{C, "JCB ⟦3530 1113 3330 0000⟧"},
	{C, "Diners ⟦3056 930902 5904⟧"},
	{C, "Mastercard ⟦2223 0031 2200 3222⟧ 09/28 cvc 412"},
	{C, "UnionPay ⟦6200 0000 0000 0005⟧"},
	{C, "⟦4012888888881881⟧"},
	{C, "card ⟦4111.1111.1111.1111⟧"},
	{C, "card ⟦4111_1111_1111_1111⟧"},
	{C, "cc ⟦4111 - 1111 - 1111 - 1111⟧"},
	{C, "⟦4111  1111  1111  1111⟧ exp 01/26"},
	{C, "⟦4111-1111 1111-1111⟧"},
	{C, "カード番号 ⟦４１１１ １１１１ １１１１ １１１１⟧"},
	{C, "cc=⟦4242424242424242⟧&exp=1228&cvc=314"},
	{C, "Visa ⟦4000 0566 5566 5556⟧"},
	{C, "Kreditkarte: ⟦5425 2334 3010 9903⟧ gültig bis 04/26"},
	{C, "numéro de carte ⟦5105 1051 0510 5100⟧ exp 11/25"},
	{C, "tarjeta ⟦3714 496353 98431⟧ vence 07/27"},
	{C, "PAN ⟦5200828282828210⟧ EXP 0927 CVC 555"},
	{C, "card no ⟦4111-1111-1111-1111⟧."},
	{C, "payment_method=card pan=⟦4242424242424242⟧ status=declined"},
	{C, "Visa: ⟦4000 0025 0000 3155⟧ (exp 03/29)"},
	{C, "old visa ⟦4222222222222⟧"},
	{C, "⟦6011000990139424⟧ 04/27 231"},
	{C, "JCB ⟦3566002020360505⟧"},
	{C, "Diners Club ⟦36227206271667⟧"},
	{C, "⟦38520000023237⟧ is the diners test card"},
	{C, "carta di credito ⟦4035 5010 0000 0008⟧ scad. 10/26"},
	{C, "cartão ⟦4000 0007 6000 0002⟧ validade 05/28"},
	{C, "UnionPay ⟦6250 9410 0652 8599⟧"},
	{C, "name,card,exp\nJ. Doe,⟦4111111111111111⟧,12/26"},
	{C, `{"card": {"number": "⟦5555555555554444⟧", "exp_month": 12, "exp_year": 2027, "cvc": "123"}}`},
	{C, `{"pan": ⟦4111111111111111⟧}`},
	{C, "Please charge ⟦4111 1111 1111 1111⟧, 08/26, 737 for the deposit"},
	{C, "bankkaart ⟦5555 5555 5555 4444⟧"},
	{C, "my amex is ⟦3714-496353-98431⟧"},
	{C, "CC#⟦4111111111111111⟧"},
	{C, "card ending in 1111 — full number ⟦4111 1111 1111 1111⟧"},
	{C, "Maestro ⟦6759 6498 2643 8453⟧"},
	{C, "⟦4111 1111 1111 1111⟧/12-27/123"},
	// ---------------- IBAN ----------------
	{I, "IBAN: ⟦DE89 3704 0044 0532 0130 00⟧."},
	{I, "please wire to ⟦GB29 NWBK 6016 1331 9268 19⟧, ref INV-2211"},
	{I, "Mon IBAN est ⟦FR14 2004 1010 0505 0001 3M02 606⟧"},
	{I, "IBAN ⟦ES9121000418450200051332⟧"},
	{I, "⟦IT60 X054 2811 1010 0000 0123 456⟧"},
	{I, "rekeningnummer ⟦NL91 ABNA 0417 1643 00⟧"},
	{I, "⟦BE68 5390 0754 7034⟧"},
	{I, "Konto ⟦CH93 0076 2011 6238 5295 7⟧"},
	{I, "IBAN ⟦AT61 1904 3002 3457 3201⟧ BIC BKAUATWW"},
	{I, "NIB/IBAN: ⟦PT50 0002 0123 1234 5678 9015 4⟧"},
	{I, "⟦PL61 1090 1014 0000 0712 1981 2874⟧"},
	{I, "⟦IE29 AIBK 9311 5212 3456 78⟧"},
	{I, "⟦SE45 5000 0000 0583 9825 7466⟧"},
	{I, "⟦NO93 8601 1117 947⟧"},
	{I, "⟦DK50 0040 0440 1162 43⟧"},
	{I, "⟦FI21 1234 5600 0007 85⟧"},
	{I, "⟦LU28 0019 4006 4475 0000⟧"},
	{I, "⟦GR16 0110 1250 0000 0001 2300 695⟧"},
	{I, "⟦CZ65 0800 0000 1920 0014 5399⟧"},
	{I, "⟦HU42 1177 3016 1111 1018 0000 0000⟧"},
	{I, "⟦RO49 AAAA 1B31 0075 9384 0000⟧"},
	{I, "⟦HR1210010051863000160⟧"},
	{I, "⟦SK31 1200 0000 1987 4263 7541⟧"},
	{I, "⟦MT84 MALT 0110 0001 2345 MTLC AST0 01S⟧"},
	{I, "⟦BG80 BNBG 9661 1020 3456 78⟧"},
	{I, "⟦SA03 8000 0000 6080 1016 7519⟧"},
	{I, "⟦AE07 0331 2345 6789 0123 456⟧"},
	{I, "⟦TR33 0006 1005 1978 6457 8413 26⟧"},
	{I, "⟦BR18 0036 0305 0000 1000 9795 493C 1⟧"},
	{I, "my iban is ⟦de89 3704 0044 0532 0130 00⟧ thx"},
	{I, "iban ⟦de89370400440532013000⟧"},
	{I, "(IBAN ⟦DE89370400440532013000⟧)"},
	{I, "IBAN: ⟦DE89-3704-0044-0532-0130-00⟧; BIC: COBADEFFXXX"},
	{I, "Bankverbindung: Sparkasse, IBAN ⟦DE89370400440532013000⟧, BIC COBADEFFXXX"},
	{I, "beneficiary,iban,amount\nACME GmbH,⟦DE89370400440532013000⟧,1200.00"},
	{I, `{"iban": "⟦GB29NWBK60161331926819⟧", "amount": 250}`},
	{I, "IBAN ⟦ＤＥ８９ ３７０４ ００４４ ０５３２ ０１３０ ００⟧"},
	{I, "IBAN:⟦FR7630006000011234567890189⟧."},
	{I, "coordonnées bancaires : ⟦FR76 3000 6000 0112 3456 7890 189⟧ (BNP)"},
	{I, "IBAN ⟦IT 60 X 05428 11101 000000123456⟧"},
	// ---------------- IP ----------------
	{IP, "the server at ⟦192.168.1.34⟧ keeps timing out"},
	{IP, "⟦203.0.113.45⟧ - - [10/Oct/2023:13:55:36 -0700] \"GET /index.html HTTP/1.1\" 200 2326"},
	{IP, "client ip ⟦2001:db8:85a3::8a2e:370:7334⟧"},
	{IP, "ssh root@⟦51.15.220.7⟧ -p 2222"},
	{IP, "X-Forwarded-For: ⟦84.17.45.201⟧, ⟦10.0.0.12⟧"},
	{IP, "link-local ⟦fe80::1ff:fe23:4567:890a%eth0⟧"},
	{IP, "host=⟦172.31.4.210⟧:5432 user=app"},
	{IP, "my home IP is ⟦81.2.69.160⟧."},
	{IP, "mapped ⟦::ffff:192.0.2.128⟧"},
	{IP, "Failed password for root from ⟦185.220.101.34⟧ port 51234 ssh2"},
	{IP, "[⟦2a02:8108:1a40:2c00:4d2e:1f3a:9b7c:12ef⟧]:443"},
	{IP, "curl http://⟦10.12.0.5⟧:8080/health"},
	// ---------------- SECRETS ----------------
	{K, "OPENAI_API_KEY=⟦sk-proj-4fGh7Jk29LmNpQ3rStUvWx8yZaBcDeFgHiJkLmNoPqRsT1uV⟧"},
	{K, "here's my key ⟦sk-abc123DEF456ghi789JKL012mno345PQR678stu⟧ why doesn't it work"},
	{K, "ANTHROPIC_API_KEY=\"⟦sk-ant-api03-Xy7kP2mQ9rT4vW1zB6nC3dF8gH5jK0lM-AbCdEfGhIjKlMnOpQrStUvWxYz012345-abcdefAA⟧\""},
	{K, "aws_access_key_id = ⟦AKIAIOSFODNN7EXAMPLE⟧"},
	{K, "aws_secret_access_key = ⟦wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY⟧"},
	{K, "git clone https://⟦ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R⟧@github.com/acme/app.git"},
	{K, "GH_TOKEN=⟦github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV⟧"},
	{K, "SLACK_BOT_TOKEN=⟦xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx⟧"},
	{K, "webhook: https://hooks.slack.com/services/⟦T024BE7LD/B08J2KQ3M/aB3dE5fG7hI9jK1lM3nO5pQ7⟧"},
	{K, "stripe.api_key = \"⟦sk_live_51H8xYzABCdefGHIjklMNOpqrSTUvwx⟧\""},
	{K, "STRIPE_WEBHOOK_SECRET=⟦whsec_5f2a9C8e7D1b4A6c3E0f9B8d7C6a5E4f⟧"},
	{K, "const key = '⟦AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY⟧';"},
	{K, "TWILIO_AUTH_TOKEN=⟦9f8e7d6c5b4a39281706f5e4d3c2b1a0⟧"},
	{K, "password: ⟦Winter2024!⟧"},
	{K, "my password is ⟦Tr0ub4dor&3⟧"},
	{K, "DB_PASSWORD=⟦s3cr3tP@ssw0rd⟧"},
	{K, "DATABASE_URL=postgres://admin:⟦Sup3rS3cret2024⟧@db.internal:5432/prod"},
	{K, "token=⟦a8F3kL9mQ2xR7vT1wZ5yB4nC6dE0gH⟧"},
	{J, "Authorization: Bearer ⟦" + jwt1 + "⟧"},
	{K, "Authorization: Basic ⟦YWRtaW46cGFzc3dvcmQxMjM=⟧"},
	{K, "x-api-key: ⟦3f9a7c2e1b8d4f6a0c5e9b7d2a4f8c1e⟧"},
	{K, "HF_TOKEN=⟦hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678⟧"},
	{K, "⟦glpat-xY9zA8bC7dE6fG5hI4jK⟧"},
	{K, "//registry.npmjs.org/:_authToken=⟦npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789⟧"},
	{K, "SENDGRID_API_KEY=⟦SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01⟧"},
	{K, "DefaultEndpointsProtocol=https;AccountName=mystore;AccountKey=⟦Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==⟧;EndpointSuffix=core.windows.net"},
	{PK, "⟦-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "-----END RSA PRIVATE KEY-----⟧"},
	{PK, "⟦-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----⟧"},
	{PK, "⟦-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----⟧"},
	{PK, `{"type": "service_account", "private_key": "⟦-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n⟧", "client_email": "x@proj.iam.gserviceaccount.com"}`},
	{PK, "⟦-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGXabcMBCADHk3j2pQ9xR7vT1wZ5yB4nC6dE0gH\n-----END PGP PRIVATE KEY BLOCK-----⟧"},
	{PK, "⟦-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI\n-----END ENCRYPTED PRIVATE KEY-----⟧"},
	{PK, "here is the key, truncated: ⟦-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7⟧ ..."},
	{K, "discord bot token: ⟦MTE4NzQ1NjY3ODkwMTIzNDU2Nw.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab⟧"},
	{K, "telegram bot token 123456789:⟦AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw⟧"},
	{K, "MAILGUN_API_KEY=⟦key-3ax6xnjp29jd6fds4gc373sgvjxteol0⟧"},
	{K, "\"client_secret\": \"⟦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⟧\""},
	{K, "wallet private key 0x⟦4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318⟧"},
	{K, "The wifi password is ⟦BlueOcean#2024⟧"},
	{K, "Passwort: ⟦Sommer2023!⟧"},
	{K, "mot de passe : ⟦Chouquette75!⟧"},
	{J, "Cookie: session=⟦" + jwt1 + "⟧; theme=dark"},
	{J, "id_token: ⟦" + jwt1 + "⟧"},
	{K, "curl -H \"Authorization: Bearer ⟦sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90⟧\" https://api.openai.com/v1/models"},
	{K, "export AWS_SECRET_ACCESS_KEY=⟦wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY⟧"},
	{K, "api key: ⟦a1b2c3d4e5f6g7h8i9j0k1l2⟧"},
	{K, "SECRET_KEY = 'django-insecure-⟦8f#k2l!m9q@x7z$w3v&b5n*c1d^e4r⟧'"},
	{K, "REDIS_URL=redis://default:⟦Xk29fLm3Qp8sRt7V⟧@redis-12345.c1.us-east-1.cloud.redislabs.com:12345"},
	{K, "connection string: Server=tcp:db.example.net;User ID=sa;Password=⟦P4ssw0rd!2024⟧;"},
	{K, "Use this API key: ⟦sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmn⟧"},
}

func encodedCases() []rc {
	return []rc{
		{S, "decode this please: ⟦" + b64("Name: John Smith, SSN: 372-19-4410, DOB 1980-01-01") + "⟧"},
		{E, "base64 user: ⟦" + b64("jane.doe@gmail.com") + "⟧"},
		{C, "payload ⟦" + b64("card 4111 1111 1111 1111 exp 12/27") + "⟧"},
		{P, "<a href=\"⟦data:text/plain;base64," + b64("Contact: +33 1 74 89 42 77") + "⟧\">note</a>"},
		{E, "⟦data:application/json;base64," + b64(`{"email":"marco.bianchi@libero.it","plan":"pro"}`) + "⟧"},
		{E, "https://example.com/signup?email=⟦jane.doe%40gmail.com⟧&phone=⟦PHONE|%2B14155552671⟧"},
		{S, "/search?q=ssn%3A+⟦372-19-4410⟧&lang=en"},
		{S, "/search?q=my%20ssn%20is%20⟦372194410⟧"},
		{I, `{\"iban\":\"⟦DE89370400440532013000⟧\"}`},
		{E, "redirect=https%3A%2F%2Fapp.example.com%2Fcb%3Fuser%3D⟦jane.doe%2540gmail.com⟧"},
		{C, "state=⟦" + b64u("card=5555555555554444&name=J Doe") + "⟧"},
		{P, "Content-Transfer-Encoding: base64\n\n⟦" + b64("Hi team,\nplease call me back at +44 7911 123456.\nThanks, Tom") + "⟧"},
		{S, "ref=⟦" + b64(`{"ssn":"372194410"}`) + "⟧"},
		{I, "⟦" + b64("Bitte überweisen Sie auf IBAN DE89 3704 0044 0532 0130 00") + "⟧"},
		{E, `user: ⟦jane.doe\u0040gmail.com⟧`},
		{P, "tel%3A⟦%2B33612345678⟧"},
		{E, "mailto%3A⟦support%40bigbank.co.uk⟧"},
		{K, "⟦" + b64("OPENAI_API_KEY=sk-proj-4fGh7Jk29LmNpQ3rStUvWx8yZaBcDeFgHiJkLmNoPqRsT1uV") + "⟧"},
		{C, "card\\u003a ⟦4111\\u00201111\\u00201111\\u00201111⟧"},
		{E, "text=" + url.QueryEscape("contact me: ") + "⟦marie.dupont%40orange.fr⟧"},
	}
}

type cc struct {
	text     string
	arguable bool
}

var clean = []cc{
	{"Your order #4839201 has shipped and should arrive Thursday.", false},
	{"Amazon order 112-4837261-9928374 was refunded.", false},
	{"Invoice INV-2024-000318 is due in 30 days.", false},
	{"UPS tracking: 1Z999AA10123456784", false},
	{"USPS tracking number 9400 1000 0000 0000 0000 00", false},
	{"USPS 9400111899223197428490 delivered", false},
	{"FedEx tracking number 771234567890", false},
	{"FedEx 7489 2345 6789 out for delivery", false},
	{"FedEx tracking 123456789012345", false},
	{"DHL waybill 1234567890", false},
	{"The meeting is on 2024-03-15 at 14:30.", false},
	{"Unix timestamp 1710505800 corresponds to March 15.", false},
	{"ts=1710505800123 level=info msg=started", false},
	{"Version 3.14.159 is out", false},
	{"Upgrade Windows to build 10.0.19045.3570", false},
	{"Chrome 122.0.6261.94 fixes the bug", false},
	{"AssemblyVersion(\"2.1.0.0\")", true},
	{"Firmware 1.2.10.4 adds Wi-Fi 6 support", true},
	{"See section 1.2.3.4 of the spec.", true},
	{"ISBN 978-3-16-148410-0", false},
	{"ISBN-13: 9780306406157", false},
	{"request id 550e8400-e29b-41d4-a716-446655440000 failed", false},
	{"sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
	{"fixed in commit a1b2c3d4e5f6", false},
	{"Price: $1,299.99 (was $1,499.00)", false},
	{"Kaufpreis € 4.500.000,00 zzgl. Nebenkosten", false},
	{"Population of Germany: 83,240,525", false},
	{"Call the function with 3 arguments.", false},
	{"For support dial extension 4521.", false},
	{"barcode EAN 4006381333931", false},
	{"GTIN 05901234123457", false},
	{"UPC 036000291452", false},
	{"75008 Paris, France", false},
	{"Dublin D02 X285", false},
	{"London SW1A 1AA", false},
	{"10115 Berlin", false},
	{"Coordinates: 48.8584, 2.2945", false},
	{"40°44'54.3\"N 73°59'08.4\"W", false},
	{"GPS 52.520008, 13.404954", false},
	{"Model NL20 speaker, part GB22-XK-9901", false},
	{"Bayern beat Dortmund 4-2 on Saturday", false},
	{"Final score 102-98 after overtime", false},
	{"2^31-1 = 2147483647", false},
	{"1234567 * 89 = 109876463", false},
	{"for i in range(1000000):\n    total += i", false},
	{"const MAX_SAFE = 9007199254740991;", false},
	{"mask = 0x7FFFFFFF", false},
	{"2024-03-15 14:30:22,123 ERROR [pool-2-thread-7] c.a.OrderService - timeout after 30000 ms", false},
	{"git cherry-pick 9fceb02d0ae598e95dc970b74767f19372d61af8", false},
	{"SGVsbG8gd29ybGQsIHRoaXMgaXMgYSBzaW1wbGUgdGVzdCBzdHJpbmc=", false},
	{"Lorem ipsum dolor sit amet at consectetur dot adipiscing elit", false},
	{"He works at google dot com now.", true},
	{"I bought it at amazon dot de last week.", true},
	{"follow @john_doe on Twitter", false},
	{"ssh user@localhost", false},
	{"git@github.com:acme/app.git", true},
	{"npm install @angular/core@17.0.1", false},
	{"docker pull nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", false},
	{"@media (max-width: 768px) { .nav { display: none } }", false},
	{"@app.route('/users/<int:id>')", false},
	{"Conversion rate improved to 3.45% (p < 0.001).", false},
	{"Termin am 15.03.2024 um 10:00", false},
	{"Due 03/15/2024", false},
	{"le 15 mars 2024 à 14h30", false},
	{"2024年3月15日", false},
	{"Resolution 1920x1080 @ 144Hz", false},
	{"Package weight 5 kg, 12.5 cm x 30 cm", false},
	{"Case number 2024-CV-001234", false},
	{"Flight LH 441 departs 10:45, seat 23A", false},
	{"Ticket #88213 - printer on floor 3 not working", false},
	{"Lot 2023-11-07-B, batch 884512", false},
	{"USt-IdNr. DE123456789", true},
	{"TVA intracommunautaire FR40303265045", true},
	{"Serial: C02XK1JHJG5H", false},
	{"Pi is 3.14159265358979323846264338327950288", false},
	{"Fibonacci: 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610", false},
	{"Chapter 12, pages 345-367", false},
	{"Install KB5034441 to patch CVE-2024-3094", false},
	{"HTTP/1.1 200 OK\nContent-Length: 348291", false},
	{"duration=1234567890ns", false},
	{"Office hours 9:00-17:30 Mon-Fri", false},
	{"Room 1204, Building 7", false},
	{"The 2023-2024 budget was 4,512,000 EUR", false},
	{"Rechnungsnummer 2024-004711 vom 12.03.2024", false},
	{"Kundennummer 100234567", false},
	{"Auftragsnummer 4500123456", false},
	{"N° de commande 0123456789", false},
	{"SIRET 732 829 320 00074", false},
	{"Numéro de TVA FR 40 303 265 045", false},
	{"Pedido nº 302-5512984-1123", false},
	{"Partita IVA 01234567890", false},
	{"KvK-nummer 12345678", false},
	{"Ordernummer 1000234567", false},
	{"The hotel has 312 rooms and 4 restaurants", false},
	{"Call center handled 1 204 332 calls in 2023", false},
	{"Score: 2-1 (45+2')", false},
	{"Opening times 09:00-12:00 / 13:00-17:00", false},
	{"In an emergency call 911 or 112.", false},
	{"MAC address 00:1A:2B:3C:4D:5E", true},
	{"use crate::db::cache;\nfn add(a: i32) {}", false},
	{"std::vector<int>::iterator it = v.begin();", false},
	{"time 12:30:45.123", false},
	{"2024-03-15T14:30:22.123+01:00", false},
	{"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", false},
	{"Stock AAPL closed at 172.62, volume 54,321,987", false},
	{"Revenue grew from 1 234 567 € to 1 456 789 €", false},
	{"Phone model: iPhone 15 Pro 256 GB", false},
	{"Call me when the build 4521 finishes", false},
	{"tel: see attachment", false},
	{"Batch job 20240315143022 completed", false},
	{"orderId=20240315-000123456", false},
	{"Invoice 1000234567890 total 45.00", false},
	{"Transaction ID 4829 1734 9921 0045", false},
	{"Reference: 4000 1234 5678 9010", false},
	{"Bestellnummer 302-1234567-1234567", false},
	{"SKU 4711-0815-2024", false},
	{"product code DE4455 and FR2231 are discontinued", false},
	{"Part no. GB29 rev 2, bin 6016", false},
	{"matrix = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]", false},
	{"result: 123456789 / 3 = 41152263", false},
	{"ID card number on the form must be 9 digits, e.g. 123456789", true},
	{"We shipped 6,011,111 units in 2023.", false},
	{"lat,lon\n48.137154,11.576124\n52.520008,13.404954", false},
	{"Ping 8.8.8.8 to test DNS", true},
	{"Google DNS 8.8.4.4 and Cloudflare 1.1.1.1", true},
	{"Subnet 10.0.0.0/8 is private", true},
	{"listen 0.0.0.0:8080", false},
	{"Nota fiscal nº 000.123.456", false},
	{"CEP 01310-100 São Paulo", false},
	{"código postal 28013 Madrid", false},
	{"CAP 00184 Roma", false},
	{"Postcode 1012 AB Amsterdam", false},
	{"ISSN 0317-8471", false},
	{"DOI 10.1038/s41586-020-2649-2", false},
	{"arXiv:2303.08774v3", false},
	{"ORCID 0000-0002-1825-0097", true},
	{"Patent US 10,123,456 B2", false},
	{"Bundesgesetzblatt 2023 I Nr. 411", false},
	{"Art. 6 Abs. 1 lit. f DSGVO", false},
	{"Die Sitzung endete um 23:59:59 Uhr", false},
	{"Temperature range -40 to 85 °C, 3.3 V", false},
	{"Error code 0x80070005 (access denied)", false},
	{"exit status 137", false},
	{"Port 5432 open, pid 123456", false},
	{"Memory: 16384 MB total, 8192 MB free", false},
	{"SELECT * FROM orders WHERE id IN (1001, 1002, 1003) LIMIT 100", false},
	{"curl -X POST https://api.example.com/v1/items/12345678/archive", false},
	{"Lorem ipsum at vero eos et accusamus dot iusto odio", false},
	{"Meet at the café at 8, I'll be at the bar dot then", false},
	{"We're at home. At least until 9.", false},
	{"Her handle is sarah.at.work on Slack", false},
	{"Password must be at least 12 characters.", false},
	{"Set the token expiry to 3600 seconds.", false},
	{"The API key field is required; see docs section 4.2.", false},
	{"password reset link expires in 24h", false},
	{"Use the secret sauce: 2 cups flour, 1 cup sugar", false},
	{"key: ArrowDown, keyCode: 40", false},
	{"token count: 128000 (context window), max_tokens 4096", false},
	{"sk-learn version 1.4.0", false},
	{"task-1234567890abcdefghijklmno", false},
	{"github.com/switchyard/switchyard/classify", false},
	{"eyes on the prize", false},
	{"AKIA is the prefix of AWS access key ids", false},
	{"The JWT header starts with eyJ", false},
	{"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----", false},
	{"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n-----END PUBLIC KEY-----", false},
	{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@laptop", true},
	{"image: nginx:1.25.3-alpine", false},
	{"requests==2.31.0\nnumpy>=1.26.4", false},
	{"IMG_20240315_143022.jpg", false},
	{"DSC01234.JPG and VID_20231224_180000.mp4", false},
	{"Rechnung Nr. 4111 vom 11.11.2023", false},
	{"The sequence 4, 1, 1, 1 repeats", false},
	{"Luhn example digits 7992739871", false},
	{"ISO 8601: 2024-W11-5", false},
	{"RFC 3339, RFC 7519 and RFC 9110", false},
	{"Q3 2024 earnings: EPS $1.46 vs $1.39 est.", false},
	{"Bundesliga table: 1. Leverkusen 58, 2. Bayern 50, 3. Stuttgart 46", false},
	{"Model year 2019, mileage 84 512 km, VIN WVWZZZ1JZXW000001", true},
	{"Deutsche Bank AG, BIC DEUTDEFFXXX", false},
	{"Swift code BNPAFRPPXXX", false},
	{"The routing number format is 9 digits.", false},
	{"IBAN format: DE followed by 20 digits", false},
	{"IBAN example format DEkk bbbb bbbb cccc cccc cc", false},
	{"Euro coin 2 € minted 2002", false},
	{"3 + 4 * 5 - 6 / 2 = 20", false},
	{"Hex colors #FF5733, #33FF57, #3357FF", false},
	{"rgba(255, 128, 0, 0.5)", false},
	{"Node v20.11.1, npm 10.2.4", false},
	{"Kubernetes 1.29.2, Helm 3.14.0", false},
	{"build #20240315.7 succeeded", false},
	{"Account ID 123456789012 (AWS)", true},
	{"arn:aws:iam::123456789012:role/Admin", true},
	{"Tracking Nummer 00340434161094042557", false},
	{"Colissimo 6A12345678901", false},
	{"Royal Mail AB123456789GB", false},
	{"Order 4012 8888 shipped", false},
	{"On 1/2/2024, 3/4/2024 and 5/6/2024", false},
	{"Phone screen 6.1 inch, 2556 x 1179 pixels", false},
	{"Call of Duty season 3, patch 1.38.2", false},
	{"The winning lottery numbers were 4 11 23 35 42 49", false},
	{"Call 0800 for free? no, the number is in the brochure", false},
	{"Zimmer 4.12, Tel.-Durchwahl -215", false},
	{"tel. ext. 2304", false},
	{"Ext 12345", false},
	{"Model 6011-1111-XB", false},
	{"Laufzeit 01.01.2024 - 31.12.2025", false},
	{"Mietvertrag vom 01.04.2019, Wohnung Nr. 12, 3. OG", false},
	{"Sent from my iPhone", false},
	{"user_id: 8812234, tenant: acme", false},
	{"request_id=req_8f3a2b1c9d0e4f5a6b7c8d9e", false},
	{"chatcmpl-9ABCdef123GHIjkl456MNOpqr", false},
	{"call_abc123XYZ789def456GHI", false},
	{"file-AbC123dEf456GhI789jKl012", false},
	{"asst_abc123DEF456ghi789JKL0", false},
	{"The password policy requires MixedCase123Characters in examples", true},
}

type found struct {
	s      classify.Span
	substr string
}

func parse(t string) (string, [][3]any) {
	var b strings.Builder
	var marks [][3]any
	for {
		i := strings.Index(t, "⟦")
		if i < 0 {
			b.WriteString(t)
			break
		}
		b.WriteString(t[:i])
		t = t[i+len("⟦"):]
		j := strings.Index(t, "⟧")
		inner := t[:j]
		t = t[j+len("⟧"):]
		lbl := ""
		if k := strings.Index(inner, "|"); k > 0 && strings.ToUpper(inner[:k]) == inner[:k] && !strings.ContainsAny(inner[:k], " ") {
			lbl, inner = inner[:k], inner[k+1:]
		}
		st := b.Len()
		b.WriteString(inner)
		marks = append(marks, [3]any{st, b.Len(), lbl})
	}
	return b.String(), marks
}

func show(text string, sp []classify.Span) string {
	var out []string
	for _, s := range sp {
		w := ""
		if s.Weak {
			w = "(weak)"
		}
		out = append(out, fmt.Sprintf("%s%s%q", s.Label, w, text[s.Start:s.End]))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

func digits(s string) string {
	s = norm.NFKC.String(s)
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func luhnOK(d string) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func ibanOK(s string) bool {
	s = strings.ToUpper(norm.NFKC.String(s))
	var d []byte
	for i := 0; i < len(s); i++ {
		if (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') {
			d = append(d, s[i])
		}
	}
	if len(d) < 5 {
		return false
	}
	d = append(d[4:], d[:4]...)
	rem := 0
	for _, c := range d {
		if c >= '0' && c <= '9' {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return rem == 1
}

var regions = []string{"US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PT", "PL", "SE", "IN", "ID", "BR", "MX", "AU", "JP", "CN", "ZA", "NG"}

func phoneValidAnywhere(v string) string {
	v = norm.NFKC.String(v)
	var ok []string
	for _, r := range regions {
		n, err := phonenumbers.Parse(v, r)
		if err == nil && phonenumbers.IsValidNumber(n) {
			ok = append(ok, r)
			if strings.HasPrefix(strings.TrimSpace(v), "+") || strings.HasPrefix(v, "00") {
				break
			}
		}
	}
	return strings.Join(ok, ",")
}

func TestRedTeamFind(t *testing.T) {
	c, err := classify.New()
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]rc{}, sensitive...), encodedCases()...)
	miss, total, vals := 0, 0, 0
	perLabel := map[string][2]int{}
	for _, tc := range all {
		text, marks := parse(tc.text)
		if !utf8.ValidString(text) {
			t.Errorf("bad utf8")
		}
		total++
		sp := c.Find(text)
		var missed []string
		for _, m := range marks {
			st, en, lbl := m[0].(int), m[1].(int), m[2].(string)
			if lbl == "" {
				lbl = tc.label
			}
			val := text[st:en]
			vals++
			// data sanity
			if lbl == C && !strings.Contains(tc.text, "base64") && !luhnOK(digits(val)) && len(digits(val)) >= 12 {
				fmt.Printf("BADDATA luhn %q\n", val)
			}
			if lbl == I && !ibanOK(val) {
				fmt.Printf("BADDATA iban %q\n", val)
			}
			hit := false
			for _, s := range sp {
				if !s.Weak && s.Label == lbl && s.Start < en && s.End > st {
					hit = true
				}
			}
			pl := perLabel[lbl]
			pl[0]++
			if !hit {
				pl[1]++
				extra := ""
				if lbl == P {
					extra = " [libphonenumber valid in: " + phoneValidAnywhere(val) + "]"
				}
				missed = append(missed, fmt.Sprintf("%s %q%s", lbl, val, extra))
			}
			perLabel[lbl] = pl
		}
		if len(missed) > 0 {
			miss++
			fmt.Printf("MISS %s\n   text: %q\n   found: %s\n", strings.Join(missed, "; "), text, show(text, sp))
		}
		// extra strong spans outside marks
		for _, s := range sp {
			if s.Weak {
				continue
			}
			in := false
			for _, m := range marks {
				if s.Start < m[1].(int) && s.End > m[0].(int) {
					in = true
				}
			}
			if !in {
				fmt.Printf("EXTRA %s %q in %q\n", s.Label, text[s.Start:s.End], text)
			}
		}
	}
	fmt.Printf("\nSENSITIVE: %d prompts, %d values, %d prompts with misses\n", total, vals, miss)
	for l, v := range perLabel {
		fmt.Printf("  %-12s values=%3d missed=%d\n", l, v[0], v[1])
	}
	fp, fpa := 0, 0
	for _, tc := range clean {
		sp := c.Find(tc.text)
		for _, s := range sp {
			if s.Weak {
				continue
			}
			tag := "FP"
			if tc.arguable {
				tag = "FP(arguable)"
			}
			fmt.Printf("%s %s %q in %q\n", tag, s.Label, tc.text[s.Start:s.End], tc.text)
		}
		if len(classify.Counts(sp)) > 0 {
			if tc.arguable {
				fpa++
			} else {
				fp++
			}
		}
	}
	na := 0
	for _, tc := range clean {
		if tc.arguable {
			na++
		}
	}
	fmt.Printf("\nCLEAN: %d prompts (%d arguable); strong-flagged: %d clear + %d arguable\n", len(clean), na, fp, fpa)
	weak := 0
	for _, tc := range clean {
		if len(classify.WeakCounts(c.Find(tc.text))) > 0 {
			weak++
		}
	}
	fmt.Printf("CLEAN weak-flagged (strict tenants): %d\n", weak)
}
