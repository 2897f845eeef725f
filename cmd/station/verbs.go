package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"id06/api"
	"id06/imaging"
	"id06/internal/atomicfile"
	"id06/order"
	"id06/personalize"
	"id06/personalize/pcsc"
	"id06/personalize/vpcd"
	"id06/pipeline"
	"id06/printer"
	"id06/queue"
	"id06/station"
)

// submitter pushes order files to a station's API.
type submitter struct {
	url, token string
	client     *http.Client
}

func (c *cli) submitter(url, token, data string) (*submitter, error) {
	if url == "" {
		url = c.getenv("STATION_URL")
	}
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	if token == "" {
		token = c.getenv("STATION_TOKEN")
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(dataDir(c, data), "dev-token"))
		if err != nil {
			return nil, errors.New("no API token: pass --token, set STATION_TOKEN, or run the station once so it writes var/dev-token")
		}
		token = strings.TrimSpace(string(b))
	}
	return &submitter{url: strings.TrimRight(url, "/"), token: token, client: &http.Client{Timeout: 60 * time.Second}}, nil
}

func (s *submitter) submit(path, photo string) (string, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if photo != "" {
		if body, err = withPhoto(body, photo); err != nil {
			return "", err
		}
	}
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the station at %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("%s: %s\n%s", path, resp.Status, out)
	}
	var v struct{ ID, State string }
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("%s: unexpected answer: %w", path, err)
	}
	return fmt.Sprintf("%s %s", v.ID, v.State), nil
}

func runOrderSubmit(c *cli, args []string) error {
	fs := c.flags("order submit")
	url := fs.String("url", "", "station URL (default $STATION_URL or http://127.0.0.1:8080)")
	token := fs.String("token", "", "supplier API token (default $STATION_TOKEN or DATA/dev-token)")
	dir := fs.String("dir", "", "submit every *.json file in DIR")
	data := fs.String("data", "", "data directory holding dev-token (default ./var)")
	photo := fs.String("photo", "", "use this JPEG/PNG as the holder's photo instead of the file's")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *dir != "" {
		matches, err := filepath.Glob(filepath.Join(*dir, "*.json"))
		if err != nil {
			return err
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	if len(files) == 0 {
		return errors.New("name an order file (FILE.json) or --dir DIR")
	}
	s, err := c.submitter(*url, *token, *data)
	if err != nil {
		return err
	}
	progress := newProgress(c.stdout, len(files))
	var failed int
	for _, f := range files {
		line, err := s.submit(f, *photo)
		if err != nil {
			failed++
			fmt.Fprintln(c.stderr, err)
		}
		progress.step(line)
	}
	progress.done()
	if failed > 0 {
		return fmt.Errorf("%d of %d orders were refused", failed, len(files))
	}
	return nil
}

// withPhoto replaces the "photo" of an order document with an image file.
func withPhoto(body []byte, photoPath string) ([]byte, error) {
	img, err := os.ReadFile(photoPath)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the order file is not JSON: %w", err)
	}
	if doc["photo"], err = json.Marshal(img); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

func runDBBackup(c *cli, args []string) error {
	fs := c.flags("db backup")
	data := fs.String("data", "", "data directory (default ./var)")
	db := fs.String("db", "", "database: sqlite:PATH | postgres://… (default sqlite:DATA/station.db)")
	pos, err := c.args(fs, args, 1)
	if err != nil {
		return err
	}
	src := database(c, *data, *db)
	if path, ok := strings.CutPrefix(src, "sqlite:"); ok && !fileExists(path) {
		return fmt.Errorf("no database at %s", path)
	}
	if fileExists(pos[0]) {
		return fmt.Errorf("%s exists; choose a new file name", pos[0])
	}
	store, err := queue.Open(src)
	if err != nil {
		return err
	}
	defer store.Close()
	progress := newProgress(c.stdout, 0)
	err = store.Backup(c.ctx, pos[0], func(done, total int) {
		// In tenths, so a log gets ten lines whatever the database's size.
		progress.set(done, total, fmt.Sprintf("%d%% copied", done*10/max(total, 1)*10))
	})
	progress.done()
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "backup written to", pos[0])
	return nil
}

func runPhotoCheck(c *cli, args []string) error {
	fs := c.flags("photo check")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{2, c.usageErr()}
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return &exitError{2, err}
	}
	res := imaging.CheckPhoto(data)
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "%s: %s\n", pos[0], strings.ToUpper(res.Verdict))
		for _, r := range res.Reasons {
			fmt.Fprintf(c.stdout, "  %-24s %s\n  %-24s %s\n", r.Code, r.MessageEN, "", r.MessageSV)
		}
	}
	switch res.Verdict {
	case "pass":
		return nil
	case "unreadable":
		return &exitError{code: 2}
	default:
		return &exitError{code: 1}
	}
}

func runPhotoCrop(c *cli, args []string) error {
	fs := c.flags("photo crop")
	out := fs.String("o", "", "output PNG (300x380, 8-bit gray, 300 dpi)")
	chip := fs.String("chip-jpeg", "", "also write the chip's facial image JPEG here")
	name, data, err := c.file(fs, args, func() bool { return *out != "" })
	if err != nil {
		return err
	}
	res := imaging.CheckPhoto(data)
	if res.Portrait == nil {
		return &exitError{2, fmt.Errorf("%s cannot be cropped: %s", name, reasonCodes(res))}
	}
	png, err := imaging.EncodePNG(res.Portrait, 300)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, png, 0o600); err != nil {
		return err
	}
	if *chip != "" {
		if err := atomicfile.Write(*chip, res.ChipJPEG, 0o600); err != nil {
			return err
		}
	}
	if res.Verdict != "pass" {
		fmt.Fprintf(c.stderr, "warning: the photo fails the ID06 rules (%s); cropped anyway\n", reasonCodes(res))
	}
	return nil
}

func reasonCodes(res *imaging.Result) string {
	codes := make([]string, len(res.Reasons))
	for i, r := range res.Reasons {
		codes[i] = r.Code
	}
	return strings.Join(codes, ", ")
}

func runPhotoOverride(c *cli, args []string) error {
	fs := c.flags("photo override")
	reason := fs.String("reason", "", "why the verdict is overridden (required)")
	code := fs.String("code", "", "with fail: the reason code sent to the orderer (e.g. background_not_uniform)")
	data := fs.String("data", "", "data directory (default ./var)")
	operator := fs.String("operator", c.getenv("USER"), "who overrides")
	pos, err := c.args(fs, args, 2, func() bool { return strings.TrimSpace(*reason) != "" })
	if err != nil {
		return err
	}
	return c.withStore(*data, func(store *queue.Store) error {
		o, err := pipeline.OverridePhoto(c.ctx, store, pos[0], pipeline.PhotoVerdict{Verdict: pos[1], Code: *code, Reason: *reason}, "operator:"+*operator)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s %s\n", o.ID, o.State)
		return nil
	})
}

func runCardRender(c *cli, args []string) error {
	fs := c.flags("card render")
	out := fs.String("o", "", "output PDF (front and back)")
	pngOut := fs.String("png", "", "also write the front as a 300 dpi PNG")
	tmplPath := fs.String("template", "", "card template (default: the built-in ID06 template)")
	number := fs.String("card-number", "", "card number to print (default: a sample number)")
	_, body, err := c.file(fs, args, func() bool { return *out != "" })
	if err != nil {
		return err
	}
	o, err := order.Decode(body)
	if err != nil {
		return err
	}
	tmpl := printer.DefaultTemplate()
	if *tmplPath != "" {
		if tmpl, err = printer.LoadTemplate(*tmplPath); err != nil {
			return err
		}
	}
	if err := o.Validate(api.Checks(tmpl, time.Now())); err != nil {
		return err
	}
	photo := imaging.CheckPhoto(o.Photo)
	if photo.Portrait == nil {
		return fmt.Errorf("the photo cannot be used: %s", reasonCodes(photo))
	}
	if photo.Verdict != "pass" {
		fmt.Fprintf(c.stderr, "warning: the photo fails the ID06 rules (%s); rendered anyway\n", reasonCodes(photo))
	}
	if *number == "" {
		*number, _ = order.FormatCardNumber("BB", 1)
	} else if !order.ValidCardNumber(*number) {
		return fmt.Errorf("card number %q is not of the form BB-NNNN-NNNNNN with a Luhn check digit", *number)
	}
	lay, err := pipeline.FaceLayout(tmpl, o, *number, station.Defaults().Issuer, o.ValidUntilDate(time.Now()), photo.Portrait, o.Company.Logo)
	if err != nil {
		return err
	}
	face, err := lay.Render()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, face.PDF, 0o600); err != nil {
		return err
	}
	if *pngOut != "" {
		return atomicfile.Write(*pngOut, face.FrontPNG, 0o600)
	}
	return nil
}

// Exit codes of `station verify` other than 0 (every check passed).
const (
	verifyFail       = 1 // a check failed
	verifyIncomplete = 2 // none failed, some could not run (no PIN, no CRL, no master key)
	verifyError      = 3 // the card could not be verified at all (no reader, no card, no CA)
)

// crlFetchTimeout bounds fetching a CRL from a certificate's distribution point.
const crlFetchTimeout = 10 * time.Second

func runVerify(c *cli, args []string) error {
	fs := c.flags("verify")
	readerName := fs.String("reader", "", "PC/SC reader name (default: the first reader with a card); 'sim' for the simulator")
	pin := fs.String("pin", "", "the card's PIN, to also check the facial image, printed information and the 9A key")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	data := fs.String("data", "", "data directory of the station that made the card: its pki/ca.pem, master key and database (default ./var)")
	configFile := fs.String("config", "", "the station's configuration file: its ca_cert, stock and key store")
	crlFile := fs.String("crl", "", "check revocation against this CRL file (DER or PEM) instead of fetching the certificate's CRL distribution point")
	if _, err := parse(fs, args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return &exitError{verifyError, err}
	}
	v, dir, closeKeys, err := openVerifier(c, *configFile, *data, *crlFile)
	if err != nil {
		return &exitError{verifyError, err}
	}
	defer closeKeys()
	spec := "pcsc"
	if *readerName == "sim" {
		spec = "sim"
	} else if *readerName != "" {
		spec = "pcsc:" + *readerName
	}
	reader, err := personalize.OpenReader(spec, filepath.Join(dir, "sim"), "")
	if err != nil {
		return &exitError{verifyError, err}
	}
	if cl, ok := reader.(io.Closer); ok {
		defer cl.Close()
	}
	card, err := reader.Connect(c.ctx)
	if err != nil {
		return &exitError{verifyError, err}
	}
	defer card.Close()
	report, err := v.Verify(c.ctx, card, *pin)
	if err != nil {
		return &exitError{verifyError, err}
	}
	orderID := findOrder(c, dir, report.CardNumber)
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			*personalize.Report
			Order string `json:"order,omitempty"`
		}{report, orderID})
		if err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "card %s  chip %s  holder %s  company %s  valid until %s  order %s\n",
			report.CardNumber, report.UID, report.Holder, report.Company, report.ValidUntil, orderID)
		for _, ch := range report.Checks {
			fmt.Fprintf(c.stdout, "  %-7s %-40s %s\n", strings.ToUpper(string(ch.Status)), ch.Name, ch.Detail)
		}
		fmt.Fprintf(c.stdout, "result: %s (%d failed, %d skipped)\n", report.Result, len(report.Failed()), len(report.Skipped()))
	}
	switch report.Result {
	case personalize.ResultPass:
		return nil
	case personalize.ResultIncomplete:
		return &exitError{code: verifyIncomplete}
	}
	return &exitError{code: verifyFail}
}

// openVerifier sets up QA verification from the station's configuration
// and data directory without creating anything: the configured CA (or the
// one in DATA/pki), the stock profile, the master key when at hand, and the
// CRL from a file or the certificate's distribution point.
func openVerifier(c *cli, configFile, data, crlFile string) (*personalize.Verifier, string, func(), error) {
	var args []string
	if configFile != "" {
		args = []string{"--config", configFile}
	}
	cfg, err := parseServeFlags(args, c.getenv, c.stderr)
	if err != nil {
		return nil, "", nil, err
	}
	dir := data
	if dir == "" {
		dir = cfg.DataDir // the configuration's, STATION_DATA, or ./var
	}
	caPath := cfg.CACert
	if caPath == "" {
		caPath = filepath.Join(dir, "pki", "ca.pem")
	}
	caPEM, err := os.ReadFile(caPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, fmt.Errorf("no issuing CA certificate at %s: pass --config FILE of the station (its ca_cert names the CA), or --data DIR of the station that made the card (it holds pki/ca.pem)", caPath)
	}
	if err != nil {
		return nil, "", nil, err
	}
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, "", nil, fmt.Errorf("%s holds no PEM certificate", caPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", caPath, err)
	}
	stock, err := personalize.Stock(cfg.Stock)
	if err != nil {
		return nil, "", nil, err
	}
	vc := personalize.VerifyConfig{CACert: ca, Stock: stock, CRL: personalize.CRLFromDistributionPoint(crlFetchTimeout)}
	if crlFile != "" {
		vc.CRL = personalize.CRLFromFile(crlFile)
	}
	closeKeys := func() {}
	token, err := cfg.OpenKeyStore()
	switch {
	case err != nil:
		return nil, "", nil, err
	case token != nil:
		vc.Keys, closeKeys = token, func() { token.Close() }
	default:
		vc.Keys = personalize.FileKeyStore{Dir: filepath.Join(dir, "pki")}
	}
	v, err := personalize.NewVerifier(vc)
	if err != nil {
		closeKeys()
		return nil, "", nil, err
	}
	return v, dir, closeKeys, nil
}

// withStore runs fn on the station database of a data directory (see
// openStore) and closes it.
func (c *cli) withStore(data string, fn func(*queue.Store) error) error {
	store, err := openStore(c, data)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// openStore opens the station database (STATION_DB, else the data
// directory's SQLite file, creating both when new), for the verbs that work
// on it beside or without the daemon.
func openStore(c *cli, data string) (*queue.Store, error) {
	dir := dataDir(c, data)
	if err := ensureDataDir(dir); err != nil {
		return nil, err
	}
	return queue.Open(database(c, data, ""))
}

// database is the database a verb works on: --db, else STATION_DB, else
// the data directory's SQLite file.
func database(c *cli, data, db string) string {
	if db == "" {
		db = c.getenv("STATION_DB")
	}
	return station.DatabaseOf(db, dataDir(c, data))
}

// findOrder names the order a card belongs to, when this station made it.
func findOrder(c *cli, dir, cardNumber string) string {
	src := database(c, dir, "")
	if path, ok := strings.CutPrefix(src, "sqlite:"); cardNumber == "" || ok && !fileExists(path) {
		return ""
	}
	store, err := queue.Open(src)
	if err != nil {
		return ""
	}
	defer store.Close()
	orders, err := store.List(c.ctx, queue.Filter{Search: cardNumber, Limit: 1})
	if err != nil || len(orders) == 0 {
		return ""
	}
	return orders[0].ID
}

func runReaders(c *cli, args []string) error {
	if pos, err := parse(c.flags("readers"), args); err != nil {
		return err
	} else if len(pos) > 0 {
		return c.usageErr()
	}
	names, err := pcsc.Readers()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Fprintln(c.stdout, "no PC/SC readers connected")
	}
	for _, n := range names {
		fmt.Fprintln(c.stdout, n)
	}
	return nil
}

func runSimCard(c *cli, args []string) error {
	return vpcd.RunSimCard(c.ctx, args, c.stdout)
}

func runTokenCreate(c *cli, args []string) error {
	fs := c.flags("token create")
	supplier := fs.String("supplier", "", "the supplier system the token is for")
	scope := fs.String("scope", "orders", "what the token may do: orders (supplier API) or operator (/v1/ops); comma-separated for both")
	data := fs.String("data", "", "data directory (default ./var)")
	if _, err := c.args(fs, args, 0, func() bool { return strings.TrimSpace(*supplier) != "" }); err != nil {
		return err
	}
	scopes, err := api.ParseScopes(*scope)
	if err != nil {
		return err
	}
	return c.withStore(*data, func(store *queue.Store) error {
		token, err := api.NewToken()
		if err != nil {
			return err
		}
		if err := store.AddToken(c.ctx, *supplier, token, scopes); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s\n", token)
		fmt.Fprintf(c.stderr, "This token is shown once; the station keeps only its hash. It is listed as id %s (station token list, station token revoke).\n", queue.TokenID(token))
		return nil
	})
}

func runTokenList(c *cli, args []string) error {
	fs := c.flags("token list")
	data := fs.String("data", "", "data directory (default ./var)")
	if _, err := c.args(fs, args, 0); err != nil {
		return err
	}
	return c.withStore(*data, func(store *queue.Store) error {
		tokens, err := store.Tokens(c.ctx)
		if err != nil {
			return err
		}
		if len(tokens) == 0 {
			fmt.Fprintln(c.stdout, "no tokens; create one with station token create --supplier NAME")
			return nil
		}
		fmt.Fprintf(c.stdout, "%-12s  %-20s  %-16s  %s\n", "ID", "SUPPLIER", "SCOPES", "CREATED")
		for _, t := range tokens {
			fmt.Fprintf(c.stdout, "%-12s  %-20s  %-16s  %s\n", t.ID, t.Supplier, strings.Join(t.Scopes, ","), t.CreatedAt.Local().Format("2006-01-02 15:04"))
		}
		return nil
	})
}

func runTokenRevoke(c *cli, args []string) error {
	fs := c.flags("token revoke")
	data := fs.String("data", "", "data directory (default ./var)")
	pos, err := c.args(fs, args, 1)
	if err != nil {
		return err
	}
	return c.withStore(*data, func(store *queue.Store) error { return c.revokeToken(store, *data, pos[0]) })
}

// revokeToken revokes a token by its id; the development token's file goes
// with it, else the next start would accept the token again.
func (c *cli) revokeToken(store *queue.Store, data, id string) error {
	t, err := store.RevokeToken(c.ctx, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("no token has id %s; station token list shows the ids", id)
	case err != nil:
		return err
	}
	// The station re-adds the dev token from its file at every start.
	devToken := filepath.Join(dataDir(c, data), "dev-token")
	if b, err := os.ReadFile(devToken); err == nil && queue.TokenID(strings.TrimSpace(string(b))) == t.ID {
		if err := os.Remove(devToken); err != nil {
			return fmt.Errorf("token revoked, but its file %s stays and the next start would accept it again: %w", devToken, err)
		}
	}
	fmt.Fprintf(c.stdout, "revoked token %s of %s (%s); requests with it are refused from now on\n", t.ID, t.Supplier, strings.Join(t.Scopes, ","))
	return nil
}
