// Anchor translation unit of the hyft_pch target (see HyftTarget.cmake).
