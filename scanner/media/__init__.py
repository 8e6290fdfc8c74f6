"""Decoding of media: content sniffing, images with EXIF orientation, reduced copies for detection."""
