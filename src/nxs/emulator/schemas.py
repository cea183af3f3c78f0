"""The input schemas of the emulator's models, field by field as fal's apps declare them.

Shared fields are named once; a schema is a tuple of `Field`s (see `inputs.py`). Fields of
kind `url` (an `image_url`, `mask_url`, `audio_url`) are fetched by the model: a data
URI or a file of the emulator's own CDN.
"""

from __future__ import annotations

from nxs.emulator.inputs import Field

Schema = tuple[Field, ...]

PROMPT = Field("prompt", "str")
TEXT = Field("text", "str")
SEED = Field("seed", "int", None, 0, 2**63 - 1)
SYNC = Field("sync_mode", "bool", False)
SAFETY = Field("enable_safety_checker", "bool", True)
NEGATIVE = Field("negative_prompt", "str", "")
IMAGE_COUNT = Field("num_images", "int", 1, 1, 4)
IMAGE_URL = Field("image_url", "url")
MASK_URL = Field("mask_url", "url")
AUDIO_URL = Field("audio_url", "url")
PROMPT_OPTIMIZER = Field("prompt_optimizer", "bool", True)
VIDEO_RATIOS = ("16:9", "9:16", "1:1")
IMAGE_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")


def choice(name: str, default: str, *choices: str) -> Field:
    return Field(name, "enum", default, choices=choices)


def fmt(name: str = "output_format", default: str = "jpeg") -> Field:
    return choice(name, default, "jpeg", "png")


def steps(default: int, high: int) -> Field:
    return Field("num_inference_steps", "int", default, 1, high)


def guidance(default: float, low: float, high: float) -> Field:
    return Field("guidance_scale", "float", default, low, high)


def size(default: str) -> Field:
    return Field("image_size", "image_size", default)


def strength(default: float) -> Field:
    return Field("strength", "float", default, 0.01, 1)


# -- text to image ---------------------------------------------------------------------
FLUX_DEV: Schema = (PROMPT, size("landscape_4_3"), steps(28, 50), SEED, guidance(3.5, 1, 20))
FLUX_DEV += (IMAGE_COUNT, SAFETY, fmt(), SYNC)
FLUX_SCHNELL: Schema = (PROMPT, size("landscape_4_3"), steps(4, 12), SEED, IMAGE_COUNT, SAFETY)
FLUX_SCHNELL += (fmt(), SYNC)
FLUX_PRO: Schema = (PROMPT, size("landscape_4_3"), SEED, IMAGE_COUNT, SYNC, fmt())
FLUX_PRO += (choice("safety_tolerance", "2", "1", "2", "3", "4", "5", "6"),)
FLUX_ULTRA: Schema = (PROMPT, choice("aspect_ratio", "16:9", *IMAGE_RATIOS), SEED, IMAGE_COUNT)
FLUX_ULTRA += (Field("raw", "bool", False), fmt(), SYNC)
SD_STYLE: Schema = (PROMPT, NEGATIVE, size("square_hd"), steps(35, 70), guidance(5, 0, 20), SEED)
SD_STYLE += (IMAGE_COUNT, SAFETY, fmt("format"), SYNC)
SD35: Schema = (PROMPT, NEGATIVE, size("landscape_4_3"), steps(28, 50), guidance(3.5, 0, 20))
SD35 += (SEED, IMAGE_COUNT, SAFETY, fmt(), SYNC)
SDXL: Schema = (PROMPT, NEGATIVE, size("square_hd"), steps(25, 65), guidance(7.5, 0, 20), SEED)
SDXL += (IMAGE_COUNT, SAFETY, fmt("format"), SYNC)
LCM: Schema = (PROMPT, NEGATIVE, size("square"), steps(6, 12), guidance(1.5, 0, 16), SEED)
LCM += (IMAGE_COUNT, SAFETY, fmt("format"), SYNC)
GROK: Schema = (PROMPT, size("square_hd"), SEED, IMAGE_COUNT, fmt(), SYNC)
RECRAFT_STYLES = ("realistic_image", "digital_illustration", "vector_illustration", "any")
RECRAFT: Schema = (PROMPT, size("square_hd"), choice("style", "realistic_image", *RECRAFT_STYLES))
RECRAFT += (fmt(default="png"), SYNC)
IDEOGRAM_STYLES = ("auto", "general", "realistic", "design", "render_3D", "anime")
IDEOGRAM: Schema = (PROMPT, choice("aspect_ratio", "1:1", *IMAGE_RATIOS))
IDEOGRAM += (Field("expand_prompt", "bool", True), choice("style", "auto", *IDEOGRAM_STYLES))
IDEOGRAM += (SEED, NEGATIVE, IMAGE_COUNT, fmt(default="png"), SYNC)

# -- image to image, inpainting -----------------------------------------------------------
FLUX_I2I: Schema = (PROMPT, IMAGE_URL, strength(0.95), steps(40, 50), SEED, guidance(3.5, 1, 20))
FLUX_I2I += (IMAGE_COUNT, SAFETY, fmt(), SYNC)
SDXL_I2I: Schema = (PROMPT, IMAGE_URL, NEGATIVE, strength(0.95), steps(25, 65))
SDXL_I2I += (guidance(7.5, 0, 20), SEED, IMAGE_COUNT, SAFETY, fmt("format"), SYNC)
SDXL_INPAINT: Schema = (PROMPT, IMAGE_URL, MASK_URL, NEGATIVE, strength(0.95), steps(25, 65))
SDXL_INPAINT += (guidance(7.5, 0, 20), SEED, IMAGE_COUNT, SAFETY, fmt("format"), SYNC)
FLUX_INPAINT: Schema = (PROMPT, IMAGE_URL, MASK_URL, strength(0.85), steps(28, 50), SEED)
FLUX_INPAINT += (guidance(3.5, 0, 35), IMAGE_COUNT, SAFETY, fmt(), SYNC)
KONTEXT: Schema = (PROMPT, IMAGE_URL, guidance(3.5, 1, 20), SEED, IMAGE_COUNT, fmt(), SYNC)
KONTEXT += (choice("safety_tolerance", "2", "1", "2", "3", "4", "5", "6"),)

# -- upscaling, background removal --------------------------------------------------------
ESRGAN_MODELS = ("RealESRGAN_x4plus", "RealESRGAN_x2plus", "RealESRGAN_x4plus_anime_6B")
ESRGAN: Schema = (IMAGE_URL, Field("scale", "float", 2, 1, 8), Field("tile", "int", 0, 0, 2048))
ESRGAN += (choice("model", "RealESRGAN_x4plus", *ESRGAN_MODELS), fmt(default="png"))
CLARITY: Schema = (IMAGE_URL, Field("prompt", "str", "masterpiece, best quality, highres"))
CLARITY += (Field("upscale_factor", "float", 2, 1, 4), NEGATIVE, steps(18, 50))
CLARITY += (Field("creativity", "float", 0.35, 0, 1), Field("resemblance", "float", 0.6, 0, 1))
CLARITY += (guidance(4, 0, 20), SEED, SAFETY)
AURA_SR: Schema = (
    IMAGE_URL,
    choice("upscaling_factor", "4", "4"),
    Field("overlapping_tiles", "bool", False),
)
AURA_SR += (choice("checkpoint", "v1", "v1", "v2"),)
BIREFNET_MODELS = ("General Use (Light)", "General Use (Heavy)", "Portrait")
BIREFNET: Schema = (IMAGE_URL, choice("model", "General Use (Light)", *BIREFNET_MODELS))
BIREFNET += (choice("operating_resolution", "1024x1024", "1024x1024", "2048x2048"),)
BIREFNET += (choice("output_format", "png", "png", "webp", "gif"), SYNC)
BIREFNET += (Field("output_mask", "bool", False), Field("refine_foreground", "bool", True))
REMBG: Schema = (IMAGE_URL, SYNC, Field("crop_to_bbox", "bool", False))
BRIA_REMOVE: Schema = (IMAGE_URL, SYNC)

# -- video ------------------------------------------------------------------------------
KLING: Schema = (PROMPT, NEGATIVE, choice("duration", "5", "5", "10"))
KLING += (choice("aspect_ratio", "16:9", *VIDEO_RATIOS), Field("cfg_scale", "float", 0.5, 0, 1))
KLING_I2V: Schema = (PROMPT, IMAGE_URL, NEGATIVE, choice("duration", "5", "5", "10"))
KLING_I2V += (Field("cfg_scale", "float", 0.5, 0, 1),)
MINIMAX: Schema = (PROMPT, PROMPT_OPTIMIZER)
MINIMAX_I2V: Schema = (PROMPT, IMAGE_URL, PROMPT_OPTIMIZER)
VEO3: Schema = (
    PROMPT,
    choice("aspect_ratio", "16:9", *VIDEO_RATIOS),
    choice("duration", "8s", "8s"),
)
VEO3 += (NEGATIVE, Field("enhance_prompt", "bool", True), Field("generate_audio", "bool", True))
VEO3 += (SEED, choice("resolution", "720p", "720p", "1080p"))
LUMA: Schema = (PROMPT, choice("aspect_ratio", "16:9", *VIDEO_RATIOS, "4:3", "3:4", "21:9", "9:21"))
LUMA += (Field("loop", "bool", False),)
LUMA_I2V: Schema = (PROMPT, IMAGE_URL, *LUMA[1:])
MAREY: Schema = (PROMPT, choice("dimensions", "1920x1080", "1920x1080", "1080x1920", "1152x1152"))
MAREY += (choice("duration", "5s", "5s", "10s"), NEGATIVE, SEED)

# -- audio -------------------------------------------------------------------------------
WHISPER: Schema = (AUDIO_URL, choice("task", "transcribe", "transcribe", "translate"))
WHISPER += (Field("language", "str", None), choice("chunk_level", "segment", "segment", "word"))
WHISPER += (choice("version", "3", "3"),)
WIZPER: Schema = (AUDIO_URL, choice("task", "transcribe", "transcribe", "translate"))
WIZPER += (Field("language", "str", "en"), choice("chunk_level", "segment", "segment"))
WIZPER += (choice("version", "3", "3"),)
SCRIBE: Schema = (AUDIO_URL, Field("language_code", "str", None))
SCRIBE += (Field("tag_audio_events", "bool", True), Field("diarize", "bool", True))
KOKORO_VOICES = ("af_heart", "af_bella", "af_nicole", "am_adam", "am_michael", "bf_emma")
KOKORO: Schema = (PROMPT, choice("voice", "af_heart", *KOKORO_VOICES))
KOKORO += (Field("speed", "float", 1, 0.1, 5),)
ELEVEN_VOICES = ("Rachel", "Aria", "Roger", "Sarah", "Laura", "Charlie")
ELEVEN_TTS: Schema = (TEXT, choice("voice", "Rachel", *ELEVEN_VOICES))
ELEVEN_TTS += (
    Field("stability", "float", 0.5, 0, 1),
    Field("similarity_boost", "float", 0.75, 0, 1),
)
ELEVEN_TTS += (Field("speed", "float", 1, 0.7, 1.2),)

# -- text ---------------------------------------------------------------------------------
LLM_MODELS = (
    "google/gemini-flash-1.5",
    "google/gemini-2.5-flash",
    "anthropic/claude-3.5-sonnet",
    "openai/gpt-4o",
    "meta-llama/llama-3.1-8b-instruct",
)
ANY_LLM: Schema = (
    PROMPT,
    Field("system_prompt", "str", None),
    choice("model", LLM_MODELS[0], *LLM_MODELS),
)
ANY_LLM += (
    Field("reasoning", "bool", False),
    Field("priority", "enum", "latency", choices=("throughput", "latency")),
)
ANY_LLM_VISION: Schema = (*ANY_LLM, IMAGE_URL)
