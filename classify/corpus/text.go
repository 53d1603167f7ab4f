package corpus

// Languages the prompts are written in.
var Languages = []string{"en", "de", "fr", "es", "it", "pt", "nl"}

// Every template holds "{noun} {v}" so that the noun (the context word)
// always sits right before the value.

var customerTemplates = map[string][]string{
	"en": {
		"Please update the billing record for this customer, {noun} {v}.",
		"Can you check why the payment with {noun} {v} was declined yesterday?",
		"The customer wrote in: {noun} {v}, please correct the account.",
		"Draft a short reply confirming that {noun} {v} has been saved.",
		"Summarize this ticket: refund requested, {noun} {v}, priority high.",
	},
	"de": {
		"Bitte aktualisieren Sie den Kundendatensatz, {noun} {v}.",
		"Kannst du prüfen, warum die Zahlung mit {noun} {v} gestern abgelehnt wurde?",
		"Der Kunde schreibt: {noun} {v}, bitte im Konto korrigieren.",
		"Entwirf eine kurze Antwort, dass {noun} {v} gespeichert wurde.",
		"Fasse dieses Ticket zusammen: Erstattung angefragt, {noun} {v}, Priorität hoch.",
	},
	"fr": {
		"Merci de mettre à jour le dossier de facturation du client, {noun} {v}.",
		"Peux-tu vérifier pourquoi le paiement avec {noun} {v} a été refusé hier ?",
		"Le client écrit : {noun} {v}, merci de corriger le compte.",
		"Rédige une courte réponse confirmant que {noun} {v} a bien été enregistré.",
		"Résume ce ticket : remboursement demandé, {noun} {v}, priorité haute.",
	},
	"es": {
		"Por favor, actualiza el registro de facturación del cliente, {noun} {v}.",
		"¿Puedes comprobar por qué ayer se rechazó el pago con {noun} {v}?",
		"El cliente escribe: {noun} {v}, por favor corregid la cuenta.",
		"Redacta una respuesta breve confirmando que {noun} {v} se ha guardado.",
		"Resume este ticket: reembolso solicitado, {noun} {v}, prioridad alta.",
	},
	"it": {
		"Per favore aggiorna la scheda di fatturazione del cliente, {noun} {v}.",
		"Puoi verificare perché ieri il pagamento con {noun} {v} è stato rifiutato?",
		"Il cliente scrive: {noun} {v}, per favore correggete il conto.",
		"Scrivi una breve risposta per confermare che {noun} {v} è stato salvato.",
		"Riassumi questo ticket: rimborso richiesto, {noun} {v}, priorità alta.",
	},
	"pt": {
		"Por favor, atualize o registo de faturação do cliente, {noun} {v}.",
		"Pode verificar porque é que ontem o pagamento com {noun} {v} foi recusado?",
		"O cliente escreve: {noun} {v}, por favor corrijam a conta.",
		"Escreva uma resposta curta a confirmar que {noun} {v} foi guardado.",
		"Resuma este pedido: reembolso solicitado, {noun} {v}, prioridade alta.",
	},
	"nl": {
		"Werk het factuurrecord van deze klant bij, {noun} {v}.",
		"Kun je nagaan waarom de betaling met {noun} {v} gisteren is geweigerd?",
		"De klant schrijft: {noun} {v}, graag het account corrigeren.",
		"Schrijf een kort antwoord dat bevestigt dat {noun} {v} is opgeslagen.",
		"Vat dit ticket samen: terugbetaling gevraagd, {noun} {v}, prioriteit hoog.",
	},
}

var techTemplates = map[string][]string{
	"en": {
		"Why does the request with {noun} {v} return 401 Unauthorized?",
		"Here is my config, {noun} {v}, can you spot the problem?",
		"The deploy log shows {noun} {v}, is that expected?",
		"Please rotate the credentials, affected: {noun} {v}.",
		"Write a curl example for the staging server, {noun} {v}.",
	},
	"de": {
		"Warum liefert die Anfrage mit {noun} {v} einen 401-Fehler?",
		"Hier ist meine Konfiguration, {noun} {v}, siehst du das Problem?",
		"Im Deploy-Log steht {noun} {v}, ist das so gewollt?",
		"Bitte die Zugangsdaten rotieren, betroffen: {noun} {v}.",
		"Schreib ein curl-Beispiel für den Staging-Server, {noun} {v}.",
	},
	"fr": {
		"Pourquoi la requête avec {noun} {v} renvoie-t-elle une erreur 401 ?",
		"Voici ma configuration, {noun} {v}, vois-tu le problème ?",
		"Le journal de déploiement affiche {noun} {v}, est-ce normal ?",
		"Merci de renouveler les identifiants, concerné : {noun} {v}.",
		"Écris un exemple curl pour le serveur de recette, {noun} {v}.",
	},
	"es": {
		"¿Por qué la petición con {noun} {v} devuelve un 401?",
		"Esta es mi configuración, {noun} {v}, ¿ves el problema?",
		"El log de despliegue muestra {noun} {v}, ¿es normal?",
		"Por favor, rota las credenciales, afectado: {noun} {v}.",
		"Escribe un ejemplo de curl para el servidor de staging, {noun} {v}.",
	},
	"it": {
		"Perché la richiesta con {noun} {v} restituisce 401?",
		"Ecco la mia configurazione, {noun} {v}, vedi il problema?",
		"Il log di deploy mostra {noun} {v}, è normale?",
		"Per favore ruota le credenziali, interessato: {noun} {v}.",
		"Scrivi un esempio curl per il server di staging, {noun} {v}.",
	},
	"pt": {
		"Porque é que o pedido com {noun} {v} devolve 401?",
		"Esta é a minha configuração, {noun} {v}, vês o problema?",
		"O log de deploy mostra {noun} {v}, é normal?",
		"Por favor, roda as credenciais, afetado: {noun} {v}.",
		"Escreve um exemplo de curl para o servidor de staging, {noun} {v}.",
	},
	"nl": {
		"Waarom geeft het verzoek met {noun} {v} een 401 terug?",
		"Dit is mijn configuratie, {noun} {v}, zie je het probleem?",
		"Het deploy-log toont {noun} {v}, is dat normaal?",
		"Roteer alsjeblieft de inloggegevens, het gaat om {noun} {v}.",
		"Schrijf een curl-voorbeeld voor de stagingserver, {noun} {v}.",
	},
}

// extraTemplates add detector-specific sentences to the family's pool.
var extraTemplates = map[string]map[string][]string{
	IBAN: {
		"en": {"Please transfer the refund to {noun} {v} by Friday."},
		"de": {"Bitte überweisen Sie den Betrag an {noun} {v}."},
		"fr": {"Merci de virer le montant sur {noun} {v}."},
		"es": {"Por favor, transfiera el importe a {noun} {v}."},
		"it": {"Per favore bonifica l'importo su {noun} {v}."},
		"pt": {"Por favor, transfira o valor para {noun} {v}."},
		"nl": {"Maak het bedrag over naar {noun} {v}."},
	},
	Phone: {
		"en": {"Customer note: {noun} {v} after 5 pm."},
		"de": {"Rückruf erbeten, {noun} {v}."},
		"fr": {"Merci de rappeler le client, {noun} {v}."},
		"es": {"Por favor, llame al cliente, {noun} {v}."},
		"it": {"Richiamare il cliente, {noun} {v}."},
		"pt": {"Ligue de volta ao cliente, {noun} {v}."},
		"nl": {"Bel de klant terug, {noun} {v}."},
	},
}

var nouns = map[string]map[string][]string{
	CreditCard: {
		"en": {"card number", "credit card", "card"}, "de": {"Kartennummer", "Kreditkarte"},
		"fr": {"numéro de carte", "carte bancaire"}, "es": {"número de tarjeta", "tarjeta"},
		"it": {"numero di carta", "carta di credito"}, "pt": {"número do cartão", "cartão"},
		"nl": {"kaartnummer", "creditcard"},
	},
	IBAN: {
		"en": {"IBAN", "account IBAN"}, "de": {"IBAN", "Konto (IBAN)"}, "fr": {"IBAN", "RIB / IBAN"},
		"es": {"IBAN", "cuenta IBAN"}, "it": {"IBAN", "conto IBAN"}, "pt": {"IBAN", "conta IBAN"},
		"nl": {"IBAN", "rekening (IBAN)"},
	},
	USSSN: {
		"en": {"SSN", "social security number", "taxpayer id"},
		"de": {"Sozialversicherungsnummer (US)", "US-Sozialversicherungsnummer"},
		"fr": {"numéro de sécurité sociale américain", "SSN américain"},
		"es": {"número de seguro social", "seguro social (EE. UU.)"},
		"it": {"numero di previdenza sociale USA", "SSN americano"},
		"pt": {"número de segurança social americano", "SSN (EUA)"},
		"nl": {"Amerikaans sofinummer (SSN)", "social security number (VS)"},
	},
	Email: {
		"en": {"email", "email address"}, "de": {"E-Mail", "E-Mail-Adresse"},
		"fr": {"e-mail", "adresse e-mail"}, "es": {"correo", "correo electrónico"},
		"it": {"email", "indirizzo email"}, "pt": {"e-mail", "endereço de e-mail"},
		"nl": {"e-mail", "e-mailadres"},
	},
	Phone: {
		"en": {"phone", "phone number", "call me at"}, "de": {"Telefon", "Tel.", "Handynummer"},
		"fr": {"téléphone", "tél."}, "es": {"teléfono", "móvil"}, "it": {"telefono", "cellulare"},
		"pt": {"telefone", "telemóvel"}, "nl": {"telefoon", "mobiel nummer"},
	},
	APIKey: {
		"en": {"API key", "key"}, "de": {"API-Schlüssel", "Schlüssel"}, "fr": {"clé API", "clé"},
		"es": {"clave de API", "API key"}, "it": {"chiave API", "API key"}, "pt": {"chave de API", "API key"},
		"nl": {"API-sleutel", "sleutel"},
	},
	JWT: {
		"en": {"token", "bearer token", "session token"}, "de": {"Token", "Sitzungstoken"},
		"fr": {"jeton", "jeton de session"}, "es": {"token", "token de sesión"},
		"it": {"token", "token di sessione"}, "pt": {"token", "token de sessão"}, "nl": {"token", "sessietoken"},
	},
	PrivateKey: {
		"en": {"private key", "key file"}, "de": {"privater Schlüssel", "Schlüsseldatei"},
		"fr": {"clé privée", "fichier de clé"}, "es": {"clave privada", "fichero de clave"},
		"it": {"chiave privata", "file della chiave"}, "pt": {"chave privada", "ficheiro da chave"},
		"nl": {"privésleutel", "sleutelbestand"},
	},
	IPAddress: {
		"en": {"server IP", "IP address", "host"}, "de": {"Server-IP", "IP-Adresse"},
		"fr": {"IP du serveur", "adresse IP"}, "es": {"IP del servidor", "dirección IP"},
		"it": {"IP del server", "indirizzo IP"}, "pt": {"IP do servidor", "endereço IP"},
		"nl": {"server-IP", "IP-adres"},
	},
}

var fillerPrompts = map[string][]string{
	"en": {"Hi, I need help with a customer request.", "Can you help me process the following?", "Please handle this request."},
	"de": {"Hallo, ich brauche Hilfe bei einer Kundenanfrage.", "Kannst du mir hierbei helfen?", "Bitte bearbeite diese Anfrage."},
	"fr": {"Bonjour, j'ai besoin d'aide pour une demande client.", "Peux-tu m'aider avec ceci ?", "Merci de traiter cette demande."},
	"es": {"Hola, necesito ayuda con una solicitud de un cliente.", "¿Me ayudas con lo siguiente?", "Por favor, gestiona esta solicitud."},
	"it": {"Ciao, ho bisogno di aiuto con una richiesta di un cliente.", "Puoi aiutarmi con quanto segue?", "Per favore gestisci questa richiesta."},
	"pt": {"Olá, preciso de ajuda com um pedido de um cliente.", "Podes ajudar-me com o seguinte?", "Por favor, trata deste pedido."},
	"nl": {"Hallo, ik heb hulp nodig bij een klantvraag.", "Kun je me hiermee helpen?", "Handel dit verzoek alsjeblieft af."},
}

var followUps = map[string]string{
	"en": "Thanks, please continue.", "de": "Danke, bitte weiter.", "fr": "Merci, continue.",
	"es": "Gracias, continúa.", "it": "Grazie, continua.", "pt": "Obrigado, continua.", "nl": "Dank je, ga verder.",
}

var systemIntros = map[string]string{
	"en": "You are a helpful support assistant.", "de": "Du bist ein hilfreicher Support-Assistent.",
	"fr": "Tu es un assistant de support serviable.", "es": "Eres un asistente de soporte útil.",
	"it": "Sei un assistente di supporto disponibile.", "pt": "És um assistente de suporte prestável.",
	"nl": "Je bent een behulpzame supportassistent.",
}

var base64Intros = map[string]string{
	"en": "Attached as base64, please decode and process:",
	"de": "Anhang als Base64, bitte dekodieren und bearbeiten:",
	"fr": "Pièce jointe en base64, merci de la décoder et de la traiter :",
	"es": "Adjunto en base64, por favor decodifícalo y procésalo:",
	"it": "Allegato in base64, per favore decodificalo ed elaboralo:",
	"pt": "Anexo em base64, por favor descodifica e processa:",
	"nl": "Bijlage in base64, decodeer en verwerk dit:",
}

var attachmentPrompts = map[string]string{
	"en": "See the attached file and update the record.",
	"de": "Siehe Anhang und aktualisiere den Datensatz.",
	"fr": "Voir le fichier joint et mettre à jour le dossier.",
	"es": "Mira el archivo adjunto y actualiza el registro.",
	"it": "Vedi il file allegato e aggiorna la scheda.",
	"pt": "Vê o ficheiro em anexo e atualiza o registo.",
	"nl": "Zie het bijgevoegde bestand en werk het record bij.",
}

var timesWord = map[string]string{"en": "times", "de": "mal", "fr": "fois", "es": "veces", "it": "volte", "pt": "vezes", "nl": "keer"}
var payWord = map[string]string{"en": "pay", "de": "zahle", "fr": "payer", "es": "pagar", "it": "pagare", "pt": "pagar", "nl": "betaal"}
var refWord = map[string]string{"en": "ref", "de": "Ref.", "fr": "réf.", "es": "ref.", "it": "rif.", "pt": "ref.", "nl": "ref."}

// Clean near-miss text.

var cleanTemplates = map[string][]string{
	"en": {
		"Please check the status of {noun} {v} in the system.",
		"Add a note to the weekly report: {noun} {v}.",
		"Why does the dashboard show {noun} {v} twice?",
		"The customer asked about {noun} {v} yesterday, can you summarize?",
	},
	"de": {
		"Bitte prüfe den Status von {noun} {v} im System.",
		"Füge dem Wochenbericht eine Notiz hinzu: {noun} {v}.",
		"Warum zeigt das Dashboard {noun} {v} doppelt an?",
		"Der Kunde hat gestern nach {noun} {v} gefragt, kannst du das zusammenfassen?",
	},
	"fr": {
		"Merci de vérifier le statut de {noun} {v} dans le système.",
		"Ajoute une note au rapport hebdomadaire : {noun} {v}.",
		"Pourquoi le tableau de bord affiche-t-il {noun} {v} deux fois ?",
		"Le client a posé une question sur {noun} {v} hier, peux-tu résumer ?",
	},
	"es": {
		"Por favor, comprueba el estado de {noun} {v} en el sistema.",
		"Añade una nota al informe semanal: {noun} {v}.",
		"¿Por qué el panel muestra {noun} {v} dos veces?",
		"El cliente preguntó ayer por {noun} {v}, ¿puedes resumirlo?",
	},
	"it": {
		"Per favore controlla lo stato di {noun} {v} nel sistema.",
		"Aggiungi una nota al report settimanale: {noun} {v}.",
		"Perché la dashboard mostra {noun} {v} due volte?",
		"Il cliente ha chiesto ieri di {noun} {v}, puoi riassumere?",
	},
	"pt": {
		"Por favor, verifica o estado de {noun} {v} no sistema.",
		"Acrescenta uma nota ao relatório semanal: {noun} {v}.",
		"Porque é que o painel mostra {noun} {v} duas vezes?",
		"O cliente perguntou ontem por {noun} {v}, podes resumir?",
	},
	"nl": {
		"Controleer de status van {noun} {v} in het systeem.",
		"Voeg een notitie toe aan het weekrapport: {noun} {v}.",
		"Waarom toont het dashboard {noun} {v} twee keer?",
		"De klant vroeg gisteren naar {noun} {v}, kun je het samenvatten?",
	},
}

// cleanNouns are per language, in the order of Languages.
var cleanNouns = map[string][7]string{
	"order":     {"order", "Bestellung", "commande", "pedido", "ordine", "encomenda", "bestelling"},
	"invoice":   {"invoice", "Rechnung", "facture", "factura", "fattura", "fatura", "factuur"},
	"tracking":  {"tracking number", "Sendungsnummer", "numéro de suivi", "número de seguimiento", "numero di tracking", "número de rastreio", "trackingnummer"},
	"loyalty":   {"loyalty number", "Bonusnummer", "numéro de fidélité", "número de socio", "codice fedeltà", "número de cliente", "klantnummer"},
	"iban":      {"IBAN", "IBAN", "IBAN", "IBAN", "IBAN", "IBAN", "IBAN"},
	"timestamp": {"timestamp", "Zeitstempel", "horodatage", "marca de tiempo", "timestamp", "carimbo temporal", "tijdstempel"},
	"date":      {"date", "Datum", "date", "fecha", "data", "data", "datum"},
	"version":   {"version", "Version", "version", "versión", "versione", "versão", "versie"},
	"range":     {"dependency range", "Versionsbereich", "plage de versions", "rango de versiones", "intervallo di versioni", "intervalo de versões", "versiebereik"},
	"commit":    {"commit", "Commit", "commit", "commit", "commit", "commit", "commit"},
	"requestid": {"request ID", "Request-ID", "ID de requête", "ID de solicitud", "ID richiesta", "ID do pedido", "request-ID"},
	"checksum":  {"checksum", "Prüfsumme", "somme de contrôle", "suma de verificación", "checksum", "soma de verificação", "checksum"},
	"total":     {"total", "Gesamtbetrag", "montant total", "importe total", "importo totale", "valor total", "totaalbedrag"},
	"postcode":  {"postcode", "PLZ", "code postal", "código postal", "CAP", "código postal", "postcode"},
	"isbn":      {"ISBN", "ISBN", "ISBN", "ISBN", "ISBN", "ISBN", "ISBN"},
	"coords":    {"coordinates", "Koordinaten", "coordonnées", "coordenadas", "coordinate", "coordenadas", "coördinaten"},
	"rate":      {"conversion rate", "Konversionsrate", "taux de conversion", "tasa de conversión", "tasso di conversione", "taxa de conversão", "conversieratio"},
	"time":      {"meeting time", "Termin um", "réunion à", "reunión a las", "riunione alle", "reunião às", "afspraak om"},
	"score":     {"final score", "Endstand", "score final", "resultado final", "risultato finale", "resultado final", "eindstand"},
	"ext":       {"extension", "Durchwahl", "poste", "extensión", "interno", "extensão", "toestel"},
	"port":      {"port", "Port", "port", "puerto", "porta", "porta", "poort"},
	"formcode":  {"form code", "Formularcode", "code de formulaire", "código de formulario", "codice modulo", "código de formulário", "formuliercode"},
	"batch":     {"batch", "Charge", "lot", "lote", "lotto", "lote", "batch"},
	"product":   {"product code", "Artikelnummer", "référence produit", "código de producto", "codice prodotto", "código de produto", "productcode"},
}

var atDotProse = map[string][]string{
	"en": {
		"Back at the dot-com era everyone built portals.",
		"Look at the dot product of the two vectors.",
		"Meet me at noon on the dot at the main entrance.",
		"Point at the dot in the middle of the slide, then zoom in.",
	},
	"de": {
		"In der Dotcom-Ära hat jeder ein Portal gebaut.",
		"Berechne das dot product der beiden Vektoren at runtime.",
		"Klick auf den Punkt at the map corner und zoome hinein.",
	},
	"fr": {
		"À l'époque des dot-com, tout le monde créait des portails.",
		"Calcule le dot product des deux vecteurs at compile time.",
		"Rendez-vous à midi pile, at the dot, devant l'entrée.",
	},
	"es": {
		"En la época de las punto com todos creaban portales.",
		"Calcula el dot product de los dos vectores at runtime.",
		"Nos vemos at the dot de las doce en la entrada.",
	},
	"it": {
		"Ai tempi delle dot-com tutti costruivano portali.",
		"Calcola il dot product dei due vettori at runtime.",
		"Ci vediamo a mezzogiorno at the dot all'ingresso.",
	},
	"pt": {
		"Na época das ponto com toda a gente criava portais.",
		"Calcula o dot product dos dois vetores at runtime.",
		"Encontramo-nos ao meio-dia at the dot à entrada.",
	},
	"nl": {
		"In het dotcomtijdperk bouwde iedereen portalen.",
		"Bereken het dot product van de twee vectoren at runtime.",
		"We zien elkaar om twaalf uur at the dot bij de ingang.",
	},
}

func langIndex(lang string) int {
	for i, l := range Languages {
		if l == lang {
			return i
		}
	}
	return 0
}
