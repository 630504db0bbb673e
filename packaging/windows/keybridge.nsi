; Keybridge for Windows: a per-user installer (no administrator rights), built on Linux with
; Debian's makensis from the x86_64-pc-windows-gnu binaries.
;   makensis -DVERSION=0.1.0 -DBINARIES=<folder with the three .exe> -DOUTFILE=<setup.exe> keybridge.nsi
; The app, the `keybridge` command line and the `keybridge-mcp` bridge go side by side, where
; the app looks for the bridge it writes into Claude Desktop's config. Uninstalling removes the
; programs only: the data folder and the Credential Manager entries stay, so a reinstall finds
; the accounts and clients again.

; A 64-bit installer for 64-bit programs (and one that Wine's 64-bit-only prefix can run).
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel user

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef BINARIES
  !error "pass -DBINARIES=<folder with keybridge-app.exe, keybridge.exe, keybridge-mcp.exe>"
!endif
!ifndef OUTFILE
  !define OUTFILE "Keybridge_${VERSION}_x64-setup.exe"
!endif

!define PRODUCT "Keybridge"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Keybridge"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\Keybridge"
InstallDirRegKey HKCU "Software\Keybridge" "InstallDir"
Icon "../../icons/icon.ico"
UninstallIcon "../../icons/icon.ico"
LicenseData "../../LICENSE"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "Keybridge installer"
VIAddVersionKey "LegalCopyright" "MIT licence, the Keybridge authors"

Page license
Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Section "Keybridge"
  SetOutPath "$INSTDIR"
  File "${BINARIES}/keybridge-app.exe"
  File "${BINARIES}/keybridge.exe"
  File "${BINARIES}/keybridge-mcp.exe"
  File "../../LICENSE"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKCU "Software\Keybridge" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "The Keybridge authors"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\keybridge-app.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  CreateDirectory "$SMPROGRAMS\Keybridge"
  CreateShortcut "$SMPROGRAMS\Keybridge\Keybridge.lnk" "$INSTDIR\keybridge-app.exe"
SectionEnd

Section "Uninstall"
  ; The programs only: accounts (in Credential Manager), clients and the audit log stay.
  Delete "$INSTDIR\keybridge-app.exe"
  Delete "$INSTDIR\keybridge.exe"
  Delete "$INSTDIR\keybridge-mcp.exe"
  Delete "$INSTDIR\LICENSE"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\Keybridge\Keybridge.lnk"
  RMDir "$SMPROGRAMS\Keybridge"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\Keybridge"
SectionEnd
