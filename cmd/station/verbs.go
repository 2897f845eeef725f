package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"id06/imaging"
	"id06/order"
	"id06/personalize"
	"id06/personalize/pcsc"
	"id06/personalize/vpcd"
	"id06/printer"
	"id06/queue"
	"id06/station"
)

func runServe(c *cli, args []string) error {
	cfg, err := station.ParseServeFlags(args, c.getenv)
	if err != nil {
		return err
	}
	s, err := station.Open(cfg, c.logger())
	if err != nil {
		return err
	}
	defer s.Close()
	sd := sdNotifier{socket: c.getenv("NOTIFY_SOCKET"), log: c.logger()}
	defer context.AfterFunc(c.ctx, func() { sd.notify("STOPPING=1") })()
	// ready runs once the devices are open and the listener accepts; the
	// pipeline starts right after it.
	return s.Run(c.ctx, c.cardCtx, func(addr string) {
		fmt.Fprintf(c.stdout, "station listening on http://%s\n", addr)
		if c.ctx.Err() == nil {
			sd.notify("READY=1\nSTATUS=listening on " + addr)
		}
	})
}

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
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: station db backup [--data DIR] FILE")
	}
	src := filepath.Join(dataDir(c, *data), "station.db")
	if !fileExists(src) {
		return fmt.Errorf("no database at %s", src)
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
		return &exitError{2, errors.New("usage: station photo check IMG [--json]")}
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
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errors.New("usage: station photo crop IMG -o OUT.png [--chip-jpeg OUT.jpg]")
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	res := imaging.CheckPhoto(data)
	if res.Portrait == nil {
		return &exitError{2, fmt.Errorf("%s cannot be cropped: %s", pos[0], reasonCodes(res))}
	}
	png, err := imaging.EncodePNG(res.Portrait, 300)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, png); err != nil {
		return err
	}
	if *chip != "" {
		if err := writeFileAtomic(*chip, res.ChipJPEG); err != nil {
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

// writeFileAtomic writes a portrait or card face for the user alone (it is
// personal data) through a fresh temporary file, so neither a crash nor an
// old file's mode leaves it half written or open to others.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func runPhotoOverride(c *cli, args []string) error {
	fs := c.flags("photo override")
	reason := fs.String("reason", "", "why the verdict is overridden (required)")
	code := fs.String("code", "", "with fail: the reason code sent to the orderer (e.g. background_not_uniform)")
	data := fs.String("data", "", "data directory (default ./var)")
	operator := fs.String("operator", os.Getenv("USER"), "who overrides")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "pass" && pos[1] != "fail") || strings.TrimSpace(*reason) == "" {
		return errors.New("usage: station photo override ORDER-ID pass|fail --reason TEXT [--code CODE]")
	}
	var reasons []queue.Reason
	if pos[1] == "fail" {
		if *code == "" {
			return errors.New("a fail override needs --code naming the rule the photo breaks (one of " + strings.Join(imaging.Codes(), ", ") + ")")
		}
		r := imaging.ReasonFor(*code)
		if r.MessageEN == "" {
			return fmt.Errorf("unknown reason code %q; use one of %s", *code, strings.Join(imaging.Codes(), ", "))
		}
		reasons = []queue.Reason{queue.Reason(r)}
	}
	store, err := openStore(c, *data)
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := store.OverridePhoto(c.ctx, pos[0], pos[1], "operator:"+*operator, *reason, reasons)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s %s\n", o.ID, o.State)
	return nil
}

func runCardRender(c *cli, args []string) error {
	fs := c.flags("card render")
	out := fs.String("o", "", "output PDF (front and back)")
	pngOut := fs.String("png", "", "also write the front as a 300 dpi PNG")
	tmplPath := fs.String("template", "", "card template (default: the built-in ID06 template)")
	number := fs.String("card-number", "", "card number to print (default: a sample number)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errors.New("usage: station card render ORDER.json -o face.pdf [--png face.png]")
	}
	body, err := os.ReadFile(pos[0])
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
	if err := o.Validate(order.Checks{Now: time.Now(), Photo: imaging.CheckPhotoHeader, Logo: imaging.CheckLogoHeader, PrintName: tmpl.CheckName}); err != nil {
		return err
	}
	photo := imaging.CheckPhoto(o.Photo)
	if photo.Portrait == nil {
		return fmt.Errorf("the photo cannot be used: %s", reasonCodes(photo))
	}
	if photo.Verdict != "pass" {
		fmt.Fprintf(c.stderr, "warning: the photo fails the ID06 rules (%s); rendered anyway\n", reasonCodes(photo))
	}
	var logo image.Image
	if len(o.Company.Logo) > 0 {
		if logo, err = imaging.PrepareLogo(o.Company.Logo, o.Company.ColorLogo); err != nil {
			return err
		}
	}
	if *number == "" {
		*number, _ = queue.FormatCardNumber("BB", 1)
	} else if !queue.ValidCardNumber(*number) {
		return fmt.Errorf("card number %q is not of the form BB-NNNN-NNNNNN with a Luhn check digit", *number)
	}
	face, err := printer.Render(tmpl, printer.Card{CardType: o.CardType, PrintName: o.Holder.PrintName, Company: o.Company.Name,
		OrgNumber: o.Company.OrgNumber, CardNumber: *number, Issuer: station.Defaults().Issuer, ValidUntil: o.ValidUntilDate(time.Now()),
		Portrait: photo.Portrait, Logo: logo, ColorLogo: o.Company.ColorLogo})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, face.PDF); err != nil {
		return err
	}
	if *pngOut != "" {
		return writeFileAtomic(*pngOut, face.FrontPNG)
	}
	return nil
}

// Exit codes of `station verify`.
const (
	verifyPass       = 0 // every check passed
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
	if _, err := parse(fs, args); err != nil {
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
	cfg, err := station.ParseServeFlags(args, c.getenv)
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

// openStore opens the station database of a data directory (creating both
// when new), for the verbs that work on it beside or without the daemon.
func openStore(c *cli, data string) (*queue.Store, error) {
	dir := dataDir(c, data)
	if err := station.EnsureDataDir(dir); err != nil {
		return nil, err
	}
	return queue.Open(filepath.Join(dir, "station.db"))
}

// findOrder names the order a card belongs to, when this station made it.
func findOrder(c *cli, dir, cardNumber string) string {
	path := filepath.Join(dir, "station.db")
	if cardNumber == "" || !fileExists(path) {
		return ""
	}
	store, err := queue.Open(path)
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
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*supplier) == "" {
		return errors.New("usage: station token create --supplier NAME [--scope orders|operator]")
	}
	scopes, err := station.ParseScopes(*scope)
	if err != nil {
		return err
	}
	store, err := openStore(c, *data)
	if err != nil {
		return err
	}
	defer store.Close()
	token, err := station.NewToken()
	if err != nil {
		return err
	}
	if err := store.AddToken(c.ctx, *supplier, token, scopes); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s\n", token)
	fmt.Fprintf(c.stderr, "This token is shown once; the station keeps only its hash. It is listed as id %s (station token list, station token revoke).\n", queue.TokenID(token))
	return nil
}

func runTokenList(c *cli, args []string) error {
	fs := c.flags("token list")
	data := fs.String("data", "", "data directory (default ./var)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, err := openStore(c, *data)
	if err != nil {
		return err
	}
	defer store.Close()
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
}

func runTokenRevoke(c *cli, args []string) error {
	fs := c.flags("token revoke")
	data := fs.String("data", "", "data directory (default ./var)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: station token revoke ID (the id station token list shows)")
	}
	store, err := openStore(c, *data)
	if err != nil {
		return err
	}
	defer store.Close()
	t, err := store.RevokeToken(c.ctx, pos[0])
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("no token has id %s; station token list shows the ids", pos[0])
	case err != nil:
		return err
	}
	// The station re-adds the dev token from its file at every start.
	devToken := filepath.Join(dataDir(c, *data), "dev-token")
	if b, err := os.ReadFile(devToken); err == nil && queue.TokenID(strings.TrimSpace(string(b))) == t.ID {
		if err := os.Remove(devToken); err != nil {
			return fmt.Errorf("token revoked, but its file %s stays and the next start would accept it again: %w", devToken, err)
		}
	}
	fmt.Fprintf(c.stdout, "revoked token %s of %s (%s); requests with it are refused from now on\n", t.ID, t.Supplier, strings.Join(t.Scopes, ","))
	return nil
}
