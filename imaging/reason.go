// Package imaging turns an uploaded portrait into the card's 300x380 grayscale
// portrait and decides whether the photo meets the ID06 photo rules, with a
// reason (English and Swedish) for every rule it breaks. It also prepares the
// employer logo for the card face.
package imaging

import "id06/order"

// Reason codes (docs/design.md §4). The lead stores and transmits these strings; they
// are part of the API.
const (
	CodeUnreadable         = "unreadable_image"
	CodeTooLarge           = "image_too_large"
	CodeResolutionTooLow   = "resolution_too_low"
	CodeNoFace             = "no_face"
	CodeMultipleFaces      = "multiple_faces"
	CodeFaceTooSmall       = "face_too_small"
	CodeHeadCutOff         = "head_cut_off"
	CodeHeadTilted         = "head_tilted"
	CodeEyesNotVisible     = "eyes_not_visible"
	CodeBlurry             = "blurry"
	CodeTooDark            = "too_dark"
	CodeOverexposed        = "overexposed"
	CodeUnevenLighting     = "uneven_lighting"
	CodeBackgroundUneven   = "background_not_uniform"
	CodeBackgroundNotLight = "background_not_light"
)

// reasonTexts holds the orderer-facing messages; they say what to do, not
// only what is wrong, because the orderer has to take a new photo.
var reasonTexts = map[string][2]string{
	CodeUnreadable: {
		"The file could not be read as a photo: it is not a JPEG or PNG image, or it is incomplete or damaged. Upload the original photo again as a JPEG or PNG.",
		"Filen kunde inte läsas som ett foto: den är inte en JPEG- eller PNG-bild, eller så är den ofullständig eller skadad. Ladda upp originalfotot igen som JPEG eller PNG.",
	},
	CodeTooLarge: {
		"The photo is too large to process (at most 20 MB and 50 megapixels; a progressive JPEG needs more memory and may have fewer). Upload a smaller photo or save it as a standard JPEG.",
		"Fotot är för stort för att behandlas (högst 20 MB och 50 megapixel; en progressiv JPEG kräver mer minne och får ha färre). Ladda upp ett mindre foto eller spara det som vanlig JPEG.",
	},
	CodeResolutionTooLow: {
		"The photo resolution is too low. It must be at least 300x410 pixels.",
		"Fotots upplösning är för låg. Det måste vara minst 300x410 pixlar.",
	},
	CodeNoFace: {
		"No face could be found. Take a photo from the front with the whole face visible.",
		"Inget ansikte hittades. Ta ett foto rakt framifrån där hela ansiktet syns.",
	},
	CodeMultipleFaces: {
		"More than one face is visible. Only the card holder may be in the photo.",
		"Fler än ett ansikte syns. Endast kortinnehavaren får vara med på fotot.",
	},
	CodeFaceTooSmall: {
		"The face is too small in the photo. Take the photo closer or use a higher resolution.",
		"Ansiktet är för litet på fotot. Ta fotot närmare eller med högre upplösning.",
	},
	CodeHeadCutOff: {
		"The whole head must be visible, with some space above the head. Step back from the camera.",
		"Hela huvudet måste synas, med lite utrymme ovanför huvudet. Ta fotot på längre avstånd.",
	},
	CodeHeadTilted: {
		"The head is tilted. Hold the head straight and look straight into the camera.",
		"Huvudet lutar. Håll huvudet rakt och titta rakt in i kameran.",
	},
	CodeEyesNotVisible: {
		"Both eyes must be clearly visible, without dark or tinted glasses.",
		"Båda ögonen måste synas tydligt, utan mörka eller tonade glasögon.",
	},
	CodeBlurry: {
		"The photo is blurry or too heavily compressed. Upload a sharp photo in good quality.",
		"Fotot är suddigt eller för hårt komprimerat. Ladda upp ett skarpt foto i god kvalitet.",
	},
	CodeTooDark: {
		"The photo is too dark. Take the photo in better light.",
		"Fotot är för mörkt. Ta fotot i bättre ljus.",
	},
	CodeOverexposed: {
		"The photo is overexposed (too bright). Avoid strong light or flash directly on the face.",
		"Fotot är överexponerat (för ljust). Undvik starkt ljus eller blixt rakt mot ansiktet.",
	},
	CodeUnevenLighting: {
		"The face is unevenly lit. Use even light from the front without shadows on the face.",
		"Ansiktet är ojämnt belyst. Använd jämnt ljus framifrån utan skuggor i ansiktet.",
	},
	CodeBackgroundUneven: {
		"The background must be plain and even, without objects, patterns or shadows.",
		"Bakgrunden måste vara enfärgad och jämn, utan föremål, mönster eller skuggor.",
	},
	CodeBackgroundNotLight: {
		"The background must be light and neutral (white or light grey).",
		"Bakgrunden måste vara ljus och neutral (vit eller ljusgrå).",
	},
}

// Codes lists every reason code in a stable order.
func Codes() []string {
	return []string{
		CodeUnreadable, CodeTooLarge, CodeResolutionTooLow, CodeNoFace,
		CodeMultipleFaces, CodeFaceTooSmall, CodeHeadCutOff, CodeHeadTilted,
		CodeEyesNotVisible, CodeBlurry, CodeTooDark, CodeOverexposed,
		CodeUnevenLighting, CodeBackgroundUneven, CodeBackgroundNotLight,
	}
}

// ReasonFor returns the messages of a code. An unknown code (for instance an
// operator's free-text override) gets the code itself as the message so that
// nothing is silently dropped.
func ReasonFor(code string) order.Reason {
	t, ok := reasonTexts[code]
	if !ok {
		return order.Reason{Code: code, MessageEN: code, MessageSV: code}
	}
	return order.Reason{Code: code, MessageEN: t[0], MessageSV: t[1]}
}
